pub mod db;
pub mod fake_slack;
pub mod flow;
pub mod signer;
pub mod test_app;
