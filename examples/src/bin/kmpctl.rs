//! `kmpctl`: tools for IEEE 802.15.4 / 802.15.9 frames.
//!
//! `kmpctl decode [--fcs32|--no-fcs] [--key HEX]... HEX` prints one JSON object describing the
//! frame. With `--key`, a secured frame is unprotected with the first key whose MIC verifies and
//! `mpx` describes the plaintext. Bad input: one line on stderr and exit status 2.

use std::process::ExitCode;

// Link the KMPs the cargo features select; each registers itself with the registry.
#[cfg(feature = "kmp-dragonfly")]
use kmp_dragonfly as _;

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

use kmp_api::addr::{Address, PanId};
use kmp_api::crypto::ccm::AesCcm;
use kmp_api::id::KmpId;
use kmp_api::security::KeyIdentifier;
use mpx::security::unprotect_in_place;
use mpx::wire::{FcsLen, Frame, FrameRepr, MpxIeRepr, ParseOptions, PayloadIeGroup, TransferType};

#[derive(Parser)]
#[command(name = "kmpctl", version, about = "IEEE 802.15.9 KMP transport tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Decode one IEEE 802.15.4 frame (hex, FCS included) and print it as JSON.
    Decode {
        /// The frame ends in a 4-octet CRC-32 FCS (SUN PHYs) instead of the 2-octet CRC-16.
        #[arg(long, conflicts_with = "no_fcs")]
        fcs32: bool,
        /// The frame has no FCS (as captured with pcap linktype 230).
        #[arg(long)]
        no_fcs: bool,
        /// A 128-bit key (32 hex digits) to try on secured frames; may be repeated.
        #[arg(long = "key", value_name = "HEX")]
        keys: Vec<String>,
        /// The frame as hex digits (spaces and colons are ignored).
        frame: String,
    },
    /// List the KMPs linked into this binary and loaded from plugins (one JSON object per
    /// line); fails on duplicates, a bad plugin, or a failed self-check of the linked KMPs.
    Kmps {
        /// Load a dynamic KMP plugin (shared library) first; may be repeated.
        #[arg(long = "plugin", value_name = "PATH.so")]
        plugins: Vec<std::path::PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match examples::parse_args::<Cli>() {
        Ok(c) => c,
        Err(code) => return code,
    };
    match cli.command {
        Command::Kmps { plugins } => match examples::sim::registry_with_plugins(&plugins)
            .and_then(|r| examples::check_linked_kmps(&r).map(|()| r))
        {
            Ok(r) => {
                for reg in r.iter() {
                    println!(
                        "{}",
                        json!({"kmp_id": reg.kmp_id.value(), "name": reg.name})
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("kmpctl: error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Decode {
            fcs32,
            no_fcs,
            keys,
            frame,
        } => {
            let fcs = if fcs32 {
                FcsLen::Four
            } else if no_fcs {
                FcsLen::None
            } else {
                FcsLen::Two
            };
            match decode(&frame, fcs, &keys) {
                Ok(v) => {
                    println!("{v}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kmpctl: error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn parse_hex(s: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let clean = clean.strip_prefix("0x").unwrap_or(&clean);
    hex::decode(clean).map_err(|e| anyhow!("invalid hex: {e}"))
}

fn pan(p: Option<PanId>) -> Value {
    p.map_or(Value::Null, |p| json!(p.to_string()))
}

fn addr(a: Address) -> Value {
    match a {
        Address::Absent => Value::Null,
        other => json!(other.to_string()),
    }
}

fn decode(hex_frame: &str, fcs: FcsLen, keys: &[String]) -> anyhow::Result<Value> {
    let mut raw = parse_hex(hex_frame)?;
    let keys = keys
        .iter()
        .map(|k| {
            let b = parse_hex(k)?;
            if b.len() != 16 {
                bail!("key must be 16 octets (32 hex digits), got {}", b.len());
            }
            Ok(b)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let frame = Frame::new_checked(&raw[..], fcs).context("malformed frame")?;
    let fcs_ok = frame.fcs_ok();
    let mut security = Value::Null;
    let mut decrypted = false;
    if let Some(aux) = frame.aux_security_header() {
        let level = aux.security_level();
        let key_id = aux.key_identifier();
        let (source, index) = match key_id {
            KeyIdentifier::Implicit => (Value::Null, Value::Null),
            KeyIdentifier::Index(i) => (Value::Null, json!(i)),
            KeyIdentifier::SourceIndex(s, i) => (json!(hex::encode(s.as_bytes())), json!(i)),
        };
        let src = frame.src_addr().extended();
        if let (Some(src), false) = (src, keys.is_empty()) {
            for key in &keys {
                let mut attempt = raw.clone();
                let mut ccm = AesCcm::new(key).context("key")?;
                if unprotect_in_place(&mut attempt, fcs, &mut ccm, src).is_ok() {
                    raw = attempt;
                    decrypted = true;
                    break;
                }
            }
        }
        let frame = Frame::new_checked(&raw[..], fcs).context("malformed frame")?;
        let aux = frame
            .aux_security_header()
            .ok_or_else(|| anyhow!("security header vanished"))?;
        security = json!({
            "security_level": level.bits(),
            "key_id_mode": key_id.mode().bits(),
            "frame_counter": aux.frame_counter(),
            "key_source": source,
            "key_index": index,
            "decrypted": decrypted,
        });
    }
    let frame = Frame::new_checked(&raw[..], fcs).context("malformed frame")?;
    let header_ies: Vec<Value> = frame
        .header_ies()
        .map(|ie| json!({"id": ie.element_id, "len": ie.content.len()}))
        .collect();
    let private_readable = match frame.aux_security_header() {
        Some(aux) => !aux.security_level().encrypts() || decrypted,
        None => true,
    };
    let mut payload_ies = Vec::new();
    let mut mpx = Vec::new();
    if private_readable && frame.frame_type().is_general() {
        let opts = ParseOptions {
            check_fcs: false,
            unprotected: true,
        };
        let repr = FrameRepr::parse_with(&frame, opts).context("malformed frame")?;
        for ie in repr.payload_ies() {
            payload_ies.push(json!({"group": ie.group.id(), "len": ie.content.len()}));
            if ie.group == PayloadIeGroup::Mpx {
                let m = MpxIeRepr::parse_bytes(ie.content).context("malformed MPX IE")?;
                mpx.push(mpx_json(&m)?);
            }
        }
    }
    Ok(json!({
        "frame_type": frame.frame_type().name(),
        "frame_version": frame.frame_version().bits(),
        "seq": frame.sequence_number(),
        "dst_pan": pan(frame.dst_pan_id()),
        "src_pan": pan(frame.src_pan_id()),
        "dst_addr": addr(frame.dst_addr()),
        "src_addr": addr(frame.src_addr()),
        "fcs_ok": fcs_ok,
        "security": security,
        "header_ies": header_ies,
        "payload_ies": payload_ies,
        "mpx": mpx,
    }))
}

fn mpx_json(m: &MpxIeRepr<'_>) -> anyhow::Result<Value> {
    let transfer_type = match m.transfer_type() {
        TransferType::FullFrame => "full",
        TransferType::FullFrameCompressed => "full_compressed",
        TransferType::Fragment => "fragment",
        TransferType::LastFragment => "last_fragment",
        TransferType::Abort => "abort",
    };
    let (fragment_number, total_size) = match *m {
        MpxIeRepr::FirstFragment { total_size, .. } => (json!(0), json!(total_size)),
        MpxIeRepr::MiddleFragment {
            fragment_number, ..
        }
        | MpxIeRepr::LastFragment {
            fragment_number, ..
        } => (json!(fragment_number), Value::Null),
        MpxIeRepr::Abort { max_size, .. } => (Value::Null, json!(max_size)),
        _ => (Value::Null, Value::Null),
    };
    let transaction_id = match m {
        MpxIeRepr::FullFrameCompressed { .. } => Value::Null,
        other => json!(other.transaction_id()),
    };
    let (kmp_id, oui) = match m.kmp_id() {
        Some(Ok(id)) => {
            let oui = match id {
                KmpId::VendorSpecific(o) => json!(o.to_string()),
                _ => Value::Null,
            };
            (json!(id.value()), oui)
        }
        Some(Err(e)) => return Err(anyhow!("malformed KMP frame: {e}")),
        None => (Value::Null, Value::Null),
    };
    let data = match m {
        MpxIeRepr::Abort { .. } => Value::Null,
        other => json!(hex::encode(other.data())),
    };
    Ok(json!({
        "transfer_type": transfer_type,
        "transaction_id": transaction_id,
        "fragment_number": fragment_number,
        "total_size": total_size,
        "multiplex_id": m.multiplex_id().map(|id| id.to_u16()),
        "kmp_id": kmp_id,
        "oui": oui,
        "data": data,
    }))
}
