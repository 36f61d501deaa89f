#!/usr/bin/env bash
# The project's test command: installs what the tests need on a fresh Debian machine
# (idempotently), then runs formatting, lints and every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v tshark >/dev/null 2>&1 || need_apt+=(tshark)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
dpkg -s libssl-dev >/dev/null 2>&1 || need_apt+=(libssl-dev)
# strongSwan for the IKEv2 interop tests (kmp-ikev2/tests/strongswan.rs): charon, swanctl, the
# openssl/gcm plugins (only recommended by libstrongswan) and kernel-libipsec (extra plugins);
# ip(8) for their network namespace.
if ! { [ -x /usr/lib/ipsec/charon ] || [ -x /usr/sbin/charon-systemd ]; } || ! command -v swanctl >/dev/null 2>&1 \
   || [ ! -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] \
   || [ ! -e /usr/lib/ipsec/plugins/libstrongswan-openssl.so ]; then
  need_apt+=(strongswan-swanctl charon-systemd libcharon-extra-plugins libstrongswan-standard-plugins)
fi
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
# FreeRADIUS 3.2 for the RADIUS interop tests (radius/tests/freeradius.rs).
[ -x /usr/sbin/freeradius ] || need_apt+=(freeradius)
# hostapd (wired, and its RADIUS/EAP server), wpa_supplicant (wired) and its eapol_test for the EAP
# interop tests (eap/tests/, examples/tests/wired_interop.rs).
[ -x /usr/sbin/hostapd ] || need_apt+=(hostapd)
[ -x /usr/bin/eapol_test ] || need_apt+=(eapoltest)
[ -x /usr/sbin/wpa_supplicant ] || need_apt+=(wpasupplicant)
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p mpx --features __fuzz --locked -- -D warnings
# The fuzz targets live outside the workspace (cargo fuzz, nightly); make sure they still build.
cargo check --manifest-path fuzz/Cargo.toml --locked --bins
# Release mode: the PIB crash test and the property tests do real work.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --doc --locked --release 2>&1 | tee -a "$log"
cargo test --workspace --all-targets --locked --release 2>&1 | tee -a "$log"
# One closing line for the whole run (cargo prints one summary per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
