mod api;
mod deliveries;
mod fake_slack_contract;
mod provisioning;
mod races;
mod slack_edge;
mod store_contract;
mod support;
