//! Library side of the example programs: the network simulation behind `kmp-sim`.

pub mod ieee8021x;
pub mod loadtest;
pub mod sim;
pub mod wired;

// Link the KMPs the cargo features select; each registers itself with the registry.
#[cfg(feature = "kmp-dragonfly")]
use kmp_dragonfly as _;
#[cfg(feature = "kmp-ikev2")]
use kmp_ikev2 as _;

/// The KMP crates this build links, by cargo feature, with the registry name each must
/// register: the startup self-check ([`check_linked_kmps`]) holds the build to it.
pub const LINKED_KMPS: &[(&str, &str)] = &[
    #[cfg(feature = "kmp-dragonfly")]
    ("kmp-dragonfly", "dragonfly"),
    #[cfg(feature = "kmp-ikev2")]
    ("kmp-ikev2", "ikev2"),
];

/// The startup self-check of static registration: every KMP feature enabled in this build
/// produced exactly one registry entry under its name (a crate linked without its
/// `inventory::submit!` reaching the binary, or registered twice, is caught here rather than
/// as "unsupported KMP" on air).
pub fn check_linked_kmps(registry: &kmp_api::Registry) -> anyhow::Result<()> {
    for (feature, name) in LINKED_KMPS {
        let n = registry.iter().filter(|r| r.name == *name).count();
        if n != 1 {
            anyhow::bail!(
                "self-check: feature {feature} is enabled but {n} registry entries are named \
                 {name:?} (expected exactly one)"
            );
        }
    }
    Ok(())
}

/// Log lines of the runtime on stderr, filtered by the `KMP_LOG` environment variable (any
/// `tracing` filter, e.g. `KMP_LOG=info` or `KMP_LOG=mpx=debug`); warnings and errors by
/// default.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KMP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// Parses the command line the way every program here does: help and version go to stdout
/// with exit status 0, usage errors to stderr with status 2 (like bad input).
pub fn parse_args<T: clap::Parser>() -> Result<T, std::process::ExitCode> {
    T::try_parse().map_err(|e| {
        let code = if e.use_stderr() { 2 } else { 0 };
        let _ = e.print();
        std::process::ExitCode::from(code)
    })
}
