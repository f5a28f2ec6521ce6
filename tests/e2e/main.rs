mod fake_slack_contract;
mod store_contract;
mod support;
mod threads;
