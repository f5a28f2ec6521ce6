mod app_home;
mod cancel;
mod expiry;
mod fake_slack_contract;
mod slack_requests;
mod store_contract;
mod support;
mod threads;
