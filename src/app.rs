//! Builds and runs the whole application; used by `main` and by every test.
