mod store_contract;
mod support;
