//! `kmp-sim`: a gateway and N nodes join over a simulated IEEE 802.15.4 channel with a KMP,
//! then exchange CCM*-protected data frames; prints a summary table.
//!
//! With no arguments: 50 nodes, Dragonfly, no loss, seed 1. `--kmp 8021x` runs the
//! Wi-SUN-shaped join instead: 802.1X with EAP-TLS (KMP ID 1, certificates generated at
//! start), then the 4-way (KMP ID 6) and group-key (KMP ID 7) handshakes. See `kmp-sim --help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use clap::Parser;
use examples::sim::{SimOptions, SimReport, run};
use indicatif::{ProgressBar, ProgressStyle};
use kmp_api::Duration;

#[derive(Parser)]
#[command(
    name = "kmp-sim",
    version,
    about = "Simulate a gateway and nodes joining with a KMP over IEEE 802.15.4 / 802.15.9 MPX",
    after_help = "KMPs:\n  \
        dragonfly    Dragonfly (KMP ID 5), password, group key delivered (default)\n  \
        ikev2        IKEv2 (KMP ID 3), PSK, child SA keys\n  \
        8021x        the Wi-SUN-shaped join: 802.1X EAP-TLS (KMP ID 1; a P-256 CA, a gateway\n               \
                     and one certificate per node generated at start), then the 4-way (6) and\n               \
                     group-key (7) handshakes started by the gateway; data under the TK\n  \
        vendor-psk   the example plugin (--plugin .../libkmp_vendor_psk.so)\n\n\
        Exit status: 0 when every join and data frame succeeded, 1 otherwise, 2 on bad input."
)]
struct Cli {
    /// Nodes besides the gateway.
    #[arg(long, default_value_t = 50)]
    nodes: usize,
    /// The KMP: a name (dragonfly, ikev2, 8021x, vendor-psk, …) or a KMP ID number (1 is the
    /// 802.1X join).
    #[arg(long, default_value = "dragonfly")]
    kmp: String,
    /// Loss probability of every radio link (0–1), on top of collisions.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Seed of everything random: the same seed gives the same run (with 8021x only nearly:
    /// the TLS engine draws its own randomness).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write every frame on air (acks included) to this pcap file (LINKTYPE 195).
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Write the installed link keys to this file for Wireshark (ieee802154_keys UAT lines).
    /// Holds secret keys: a debugging aid.
    #[arg(long, value_name = "FILE")]
    keylog: Option<PathBuf>,
    /// Load a dynamic KMP plugin (shared library); may be repeated.
    #[arg(long = "plugin", value_name = "PATH.so")]
    plugins: Vec<PathBuf>,
    /// Data frames each node sends after joining.
    #[arg(long, default_value_t = 3)]
    data_frames: usize,
    /// Mean spacing of join starts, milliseconds of simulated time [default: 200, 2000 with
    /// 8021x: both keep the channel load of the joins near 8 %].
    #[arg(long, value_name = "MS")]
    join_interval_ms: Option<u64>,
    /// Radio range in metres.
    #[arg(long, default_value_t = 30.0)]
    range: f64,
    /// Nodes are placed in a disk of this radius (metres) around the gateway.
    #[arg(long, default_value_t = 14.0)]
    radius: f64,
    /// The gateway's KMP configuration (TOML file); default: built-in for known KMPs (8021x
    /// takes none: its configuration and PKI are built in).
    #[arg(long, value_name = "FILE")]
    gateway_config: Option<PathBuf>,
    /// The nodes' KMP configuration (TOML file); default: built-in for known KMPs.
    #[arg(long, value_name = "FILE")]
    node_config: Option<PathBuf>,
    /// Send full MPX frames as transfer type 0 (as Wi-SUN requires) instead of type 1.
    #[arg(long)]
    wisun_compat: bool,
    /// Print the summary as one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Do not draw a progress bar.
    #[arg(long)]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = match examples::parse_args::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    examples::init_logging();
    match main_inner(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("kmp-sim: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read(p: &Option<PathBuf>) -> anyhow::Result<Option<String>> {
    use anyhow::Context;
    p.as_ref()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display())))
        .transpose()
}

fn main_inner(cli: Cli) -> anyhow::Result<bool> {
    let registry = examples::sim::registry_with_plugins(&[])?;
    examples::check_linked_kmps(&registry)?;
    let opts = SimOptions {
        nodes: cli.nodes,
        kmp: cli.kmp.clone(),
        loss: cli.loss,
        seed: cli.seed,
        pcap: cli.pcap.clone(),
        keylog: cli.keylog.clone(),
        plugins: cli.plugins.clone(),
        data_frames: cli.data_frames,
        join_interval: cli.join_interval_ms.map(Duration::from_millis),
        range_m: cli.range,
        radius_m: cli.radius,
        gateway_config: read(&cli.gateway_config)?,
        node_config: read(&cli.node_config)?,
        wisun_compat: cli.wisun_compat,
        ..SimOptions::default()
    };
    let total = cli.nodes as u64;
    let bar = if cli.quiet {
        ProgressBar::hidden()
    } else {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} joins {pos}/{len} [{bar:30}] {msg} ({elapsed})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b
    };
    let report = run(&opts, &|p| {
        let joined = p.joined.load(Ordering::Relaxed) as u64;
        let failed = p.failed.load(Ordering::Relaxed) as u64;
        bar.set_position(joined + failed);
        let t = p.virtual_us.load(Ordering::Relaxed);
        bar.set_message(format!(
            "failed {failed}, data {}, sim time {:.1} s",
            p.data_done.load(Ordering::Relaxed),
            t as f64 / 1e6
        ));
    })?;
    bar.finish_and_clear();
    if cli.json {
        println!("{}", to_json(&report));
    } else {
        print_table(&report);
    }
    Ok(report.joins_failed == 0
        && report.data_failed == 0
        && report.data_received >= report.data_sent)
}

fn ms(us: Option<u64>) -> String {
    us.map_or("-".into(), |u| format!("{:.1} ms", u as f64 / 1000.0))
}

fn to_json(r: &SimReport) -> String {
    format!(
        concat!(
            "{{\"kmp\":\"{}\",\"nodes\":{},\"joins_completed\":{},\"joins_failed\":{},",
            "\"data_sent\":{},\"data_failed\":{},\"data_received\":{},",
            "\"frames_on_air\":{},\"acks_on_air\":{},\"octets_on_air\":{},\"air_time_us\":{},",
            "\"join_octets_on_air\":{},\"octets_per_join\":{:.1},\"kmp_datagrams\":{},\"kmp_upper_layer_octets\":{},",
            "\"floor_octets\":{},\"join_octets_over_floor\":{:.4},\"collisions\":{},\"losses\":{},",
            "\"join_latency_p50_us\":{},\"join_latency_p99_us\":{},\"virtual_time_us\":{},",
            "\"wall_ms\":{},\"peak_rss_kib\":{}}}"
        ),
        r.kmp,
        r.nodes,
        r.joins_completed,
        r.joins_failed,
        r.data_sent,
        r.data_failed,
        r.data_received,
        r.medium.frames,
        r.medium.acks,
        r.medium.octets_on_air,
        r.medium.air_time.as_micros(),
        r.join_medium.octets_on_air,
        r.octets_per_join().unwrap_or(0.0),
        r.kmp_datagrams,
        r.kmp_upper_layer_octets,
        r.floor_octets,
        r.join_octets_over_floor().unwrap_or(0.0),
        r.medium.collisions,
        r.medium.losses,
        r.latency_percentile(50.0).unwrap_or(0),
        r.latency_percentile(99.0).unwrap_or(0),
        r.virtual_time.as_micros(),
        r.wall.as_millis(),
        r.peak_rss_kib.unwrap_or(0),
    )
}

fn print_table(r: &SimReport) {
    let rows: Vec<(&str, String)> = vec![
        ("KMP", r.kmp.clone()),
        ("nodes", r.nodes.to_string()),
        ("joins completed", r.joins_completed.to_string()),
        ("joins failed", r.joins_failed.to_string()),
        (
            "data frames sent / received / failed",
            format!("{} / {} / {}", r.data_sent, r.data_received, r.data_failed),
        ),
        (
            "frames on air (data PPDUs, retries included)",
            r.medium.frames.to_string(),
        ),
        ("acks on air", r.medium.acks.to_string()),
        (
            "octets on air (PHY headers included)",
            r.medium.octets_on_air.to_string(),
        ),
        (
            "air time",
            format!("{:.3} s", r.medium.air_time.as_micros() as f64 / 1e6),
        ),
        (
            "octets on air per join",
            r.octets_per_join()
                .map_or("-".into(), |o| format!("{o:.0}")),
        ),
        (
            "framing floor per join",
            if r.joins_completed > 0 {
                format!("{:.0}", r.floor_octets as f64 / r.joins_completed as f64)
            } else {
                "-".into()
            },
        ),
        (
            "join octets on air / floor",
            r.join_octets_over_floor()
                .map_or("-".into(), |x| format!("{x:.4}")),
        ),
        (
            "collisions / random losses",
            format!("{} / {}", r.medium.collisions, r.medium.losses),
        ),
        ("join latency p50", ms(r.latency_percentile(50.0))),
        ("join latency p99", ms(r.latency_percentile(99.0))),
        (
            "simulated time",
            format!("{:.3} s", r.virtual_time.as_micros() as f64 / 1e6),
        ),
        ("wall time", format!("{:.3} s", r.wall.as_secs_f64())),
        (
            "peak memory",
            r.peak_rss_kib
                .map_or("-".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
        ),
    ];
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("{:-<1$}", "", w + 24);
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
    println!("{:-<1$}", "", w + 24);
}
