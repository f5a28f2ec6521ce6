pub mod db;
pub mod fake_slack;
pub mod process;
pub mod signer;
#[macro_use]
pub mod story;
pub mod test_app;
