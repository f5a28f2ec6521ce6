mod fake_slack_contract;
mod support;
