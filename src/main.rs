use std::process::ExitCode;
use std::sync::Arc;

use accessbot::app::Stopped;
use accessbot::clock::SystemClock;
use accessbot::{App, Config};
use tracing_subscriber::EnvFilter;

/// sysexits.h: an internal software error; a supervisor restarting us can tell it from a
/// configuration error (2) or a failed start (1).
const EX_SOFTWARE: u8 = 70;

fn main() -> ExitCode {
    limit_malloc_arenas();
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run()),
        Err(err) => {
            eprintln!("accessbot: cannot start the runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that allocates an arena of its own, up to eight per core, and
/// memory freed in one arena is not reused by the others: with the runtime's threads and
/// the database's, that costs megabytes of resident memory (bench/analysis.md). Must run
/// before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("accessbot: configuration error: {err}");
            return ExitCode::from(2);
        }
    };
    let app = match App::build(config, Arc::new(SystemClock)).await {
        Ok(app) => app,
        Err(err) => {
            eprintln!("accessbot: cannot start: {err}");
            return ExitCode::from(1);
        }
    };
    match app.run(shutdown_signal()).await {
        Ok(Stopped::OnRequest) => ExitCode::SUCCESS,
        Ok(Stopped::TooManyPanics) => {
            eprintln!("accessbot: stopped: the background loops kept panicking (see the log)");
            ExitCode::from(EX_SOFTWARE)
        }
        Err(err) => {
            eprintln!("accessbot: server error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
