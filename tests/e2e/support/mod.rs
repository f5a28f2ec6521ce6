pub mod fake_slack;
pub mod signer;
