pub mod db;
pub mod fake_slack;
pub mod signer;
pub mod test_app;
