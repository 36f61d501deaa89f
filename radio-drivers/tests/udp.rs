//! The UDP radio (`driver-udp`) on loopback: acknowledged delivery, retries up to NoAck,
//! simulated loss, and stray or broken datagrams.

#![cfg(feature = "driver-udp")]
// Helpers of an integration test: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use actix::{Actor, Context, Handler};
use kmp_api::ExtendedAddress;
use kmp_api::addr::{Address, PanId, ShortAddress};
use kmp_api::primitives::MacStatus;
use mpx::runtime::{MacPort, RadioDriver, RadioRx, RadioTx, RadioTxDone};
use mpx::wire::{FcsLen, FrameRepr, FrameType, FrameVersion};
use radio_drivers::udp::{
    AddPeer, DatagramKind, GetStats, Shutdown, UdpRadio, UdpRadioConfig, UdpRadioConfigError,
    UdpRadioDriver, UdpRadioStats, encode_datagram, imm_ack,
};
use tokio::sync::mpsc;

const PAN: PanId = PanId(0xabcd);
const A: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xa]);
const B: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xb]);
const C: ExtendedAddress = ExtendedAddress([2, 0, 0, 0, 0, 0, 0, 0xc]);
/// Long enough for loopback on a loaded machine; short enough for retries to be quick.
const WAIT: Duration = Duration::from_secs(5);

enum Event {
    Rx(RadioRx),
    Done(RadioTxDone),
}

/// The MAC side of a radio: forwards everything to a channel.
struct Collector(mpsc::UnboundedSender<Event>);

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<RadioRx> for Collector {
    type Result = ();
    fn handle(&mut self, msg: RadioRx, _ctx: &mut Context<Self>) {
        let _ = self.0.send(Event::Rx(msg));
    }
}

impl Handler<RadioTxDone> for Collector {
    type Result = ();
    fn handle(&mut self, msg: RadioTxDone, _ctx: &mut Context<Self>) {
        let _ = self.0.send(Event::Done(msg));
    }
}

struct Node {
    driver: UdpRadioDriver,
    events: mpsc::UnboundedReceiver<Event>,
}

impl Node {
    async fn new(ext: ExtendedAddress, tune: impl FnOnce(&mut UdpRadioConfig)) -> Node {
        let mut config = UdpRadioConfig::new("127.0.0.1:0".parse().unwrap(), ext, PAN);
        config.ack_wait = Duration::from_millis(50);
        tune(&mut config);
        let mut driver = UdpRadio::bind(config).await.unwrap();
        let (tx, events) = mpsc::unbounded_channel();
        let c = Collector(tx).start();
        driver.attach(MacPort {
            rx: c.clone().recipient(),
            tx_done: c.recipient(),
        });
        Node { driver, events }
    }

    async fn add_peer(&self, peer: SocketAddr) {
        self.driver.addr().send(AddPeer(peer)).await.unwrap();
    }

    async fn stats(&self) -> UdpRadioStats {
        self.driver.addr().send(GetStats).await.unwrap()
    }

    async fn next(&mut self) -> Event {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("no event in time")
            .expect("collector gone")
    }

    async fn next_done(&mut self) -> RadioTxDone {
        match self.next().await {
            Event::Done(d) => d,
            Event::Rx(rx) => panic!("unexpected frame {:02x?}", rx.frame),
        }
    }

    async fn next_rx(&mut self) -> RadioRx {
        match self.next().await {
            Event::Rx(rx) => rx,
            Event::Done(d) => panic!("unexpected outcome {d:?}"),
        }
    }

    /// Nothing more arrives within `d`.
    async fn quiet(&mut self, d: Duration) {
        if let Ok(Some(e)) = tokio::time::timeout(d, self.events.recv()).await {
            match e {
                Event::Rx(rx) => panic!("unexpected frame {:02x?}", rx.frame),
                Event::Done(d) => panic!("unexpected outcome {d:?}"),
            }
        }
    }

    /// Polls the counters until `done` holds for them.
    async fn stats_until(&self, done: impl Fn(&UdpRadioStats) -> bool) -> UdpRadioStats {
        let start = std::time::Instant::now();
        loop {
            let s = self.stats().await;
            if done(&s) {
                return s;
            }
            assert!(start.elapsed() < WAIT, "counters never got there: {s:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A 2006 data frame from `src` to `dst` in our PAN with a short payload and a correct FCS.
fn data_frame(seq: u8, ar: bool, dst: Address, src: ExtendedAddress, dst_pan: PanId) -> Vec<u8> {
    let payload = [0x5a, seq, 0x01, 0x02, 0x03];
    let repr = FrameRepr {
        frame_type: FrameType::Data,
        frame_version: FrameVersion::V2006,
        frame_pending: false,
        ack_request: ar,
        seq: Some(seq),
        dst_pan: Some(dst_pan),
        dst_addr: dst,
        src_pan: None,
        src_addr: Address::Extended(src),
        security: None,
        header_ies: &[],
        payload_ies: &[],
        payload_termination: false,
        payload: &payload,
    };
    let mut buf = vec![0u8; repr.buffer_len(FcsLen::Two)];
    repr.emit(&mut buf, FcsLen::Two).unwrap();
    buf
}

fn radio_tx(token: u64, frame: Vec<u8>, ar: bool, dst: Address) -> RadioTx {
    RadioTx {
        token,
        frame,
        ack_request: ar,
        dst_pan: Some(PAN),
        dst,
    }
}

#[actix::test]
async fn acknowledged_frame_is_delivered_once_and_acked_once() {
    let mut a = Node::new(A, |_| {}).await;
    let mut b = Node::new(B, |_| {}).await;
    a.add_peer(b.driver.local_addr()).await;
    b.add_peer(a.driver.local_addr()).await;

    let frame = data_frame(0x42, true, Address::Extended(B), A, PAN);
    a.driver
        .transmit(radio_tx(7, frame.clone(), true, Address::Extended(B)));

    let rx = b.next_rx().await;
    assert_eq!(rx.frame, frame);
    assert_eq!(rx.lqi, 255);
    let done = a.next_done().await;
    assert_eq!((done.token, done.status), (7, MacStatus::Success));
    assert!(done.at >= rx.at);

    a.quiet(Duration::from_millis(150)).await;
    b.quiet(Duration::from_millis(50)).await;
    let sa = a.stats().await;
    let sb = b.stats().await;
    assert_eq!(sa.tx_attempts, 1);
    assert_eq!(sa.tx_retries, 0);
    assert_eq!(sa.tx_success, 1);
    assert_eq!(sa.acks_received, 1);
    assert_eq!(sa.acks_unexpected, 0);
    assert_eq!(sb.rx_datagrams, 1);
    assert_eq!(sb.rx_delivered, 1);
    assert_eq!(sb.acks_sent, 1);
    assert_eq!(sb.tx_attempts, 0);

    // A broadcast with AR is neither acknowledged nor waited for.
    let bcast = Address::Short(ShortAddress::BROADCAST);
    let frame = data_frame(0x43, true, bcast, A, PanId::BROADCAST);
    a.driver.transmit(RadioTx {
        dst_pan: Some(PanId::BROADCAST),
        ..radio_tx(8, frame.clone(), true, bcast)
    });
    assert_eq!(b.next_rx().await.frame, frame);
    let done = a.next_done().await;
    assert_eq!((done.token, done.status), (8, MacStatus::Success));
    b.quiet(Duration::from_millis(50)).await;
    assert_eq!(b.stats().await.acks_sent, 1);
    assert_eq!(a.stats().await.tx_attempts, 2);

    a.driver.addr().send(Shutdown).await.unwrap();
    b.driver.addr().send(Shutdown).await.unwrap();
}

#[actix::test]
async fn frame_to_an_absent_device_ends_in_no_ack_after_the_retries() {
    let mut a = Node::new(A, |c| {
        c.ack_wait = Duration::from_millis(10);
        c.max_frame_retries = 2;
    })
    .await;
    let mut b = Node::new(B, |_| {}).await;
    a.add_peer(b.driver.local_addr()).await;

    let frame = data_frame(9, true, Address::Extended(C), A, PAN);
    a.driver
        .transmit(radio_tx(1, frame.clone(), true, Address::Extended(C)));
    // Queued behind it, sent only afterwards: outcomes come in order.
    a.driver
        .transmit(radio_tx(2, frame, false, Address::Extended(C)));

    let done = a.next_done().await;
    assert_eq!((done.token, done.status), (1, MacStatus::NoAck));
    let done = a.next_done().await;
    assert_eq!((done.token, done.status), (2, MacStatus::Success));

    let sa = a.stats().await;
    assert_eq!(sa.tx_attempts, 2 + 1 + 1);
    assert_eq!(sa.tx_retries, 2);
    assert_eq!(sa.tx_no_ack, 1);
    assert_eq!(sa.tx_success, 1);
    let sb = b.stats_until(|s| s.rx_datagrams == 4).await;
    assert_eq!(sb.rx_filtered, 4);
    assert_eq!(sb.rx_delivered, 0);
    assert_eq!(sb.acks_sent, 0);
    b.quiet(Duration::from_millis(50)).await;
}

#[actix::test]
async fn lossy_receiver_is_reached_through_retries() {
    const FRAMES: u64 = 20;
    let mut a = Node::new(A, |c| {
        c.ack_wait = Duration::from_millis(40);
        c.max_frame_retries = 7;
    })
    .await;
    let mut b = Node::new(B, |c| {
        c.loss = 0.5;
        c.seed = 0x0159;
    })
    .await;
    a.add_peer(b.driver.local_addr()).await;

    let mut sent = Vec::new();
    for token in 0..FRAMES {
        let seq = u8::try_from(token).unwrap();
        let frame = data_frame(seq, true, Address::Extended(B), A, PAN);
        sent.push(frame.clone());
        a.driver
            .transmit(radio_tx(token, frame, true, Address::Extended(B)));
    }
    let mut success = 0;
    for token in 0..FRAMES {
        let done = a.next_done().await;
        assert_eq!(done.token, token, "outcomes in order");
        match done.status {
            MacStatus::Success => success += 1,
            MacStatus::NoAck => {}
            other => panic!("unexpected status {other:?}"),
        }
    }
    // Eight attempts at one half each: a frame fails with probability 1/256.
    assert!(
        success >= FRAMES - 2,
        "only {success} of {FRAMES} acknowledged"
    );

    let sa = a.stats().await;
    let sb = b.stats_until(|s| s.rx_datagrams == sa.tx_attempts).await;
    // Every acknowledged frame was delivered at least once (in order of first delivery).
    let mut delivered = Vec::new();
    while let Ok(e) = b.events.try_recv() {
        match e {
            Event::Rx(rx) => delivered.push(rx.frame),
            Event::Done(d) => panic!("unexpected outcome {d:?}"),
        }
    }
    delivered.dedup();
    assert!(delivered.iter().all(|f| sent.contains(f)));
    assert!(u64::try_from(delivered.len()).unwrap() >= success);

    assert_eq!(sa.tx_success, success);
    assert_eq!(sa.tx_success + sa.tx_no_ack, FRAMES);
    assert_eq!(sa.tx_attempts, FRAMES + sa.tx_retries);
    assert!(sa.tx_retries > 0, "a 50 % loss must cost retries");
    assert_eq!(sa.acks_received, sa.tx_success);
    assert!(sb.rx_lost > 0);
    assert_eq!(sb.rx_lost + sb.rx_delivered, sb.rx_datagrams);
    // Duplicates only when an ack came after the timer.
    assert!(sb.rx_delivered >= u64::try_from(delivered.len()).unwrap());
    assert_eq!(sb.acks_sent, sb.rx_delivered);
    // Every ack B sent reached A (A loses nothing); the late ones are counted as unexpected.
    let sa = a
        .stats_until(|s| s.acks_received + s.acks_unexpected == sb.acks_sent)
        .await;
    assert_eq!(sa.acks_received, success);
}

#[actix::test]
async fn stray_and_broken_datagrams_are_counted_not_delivered() {
    let mut b = Node::new(B, |c| c.short_address = Some(ShortAddress(0x0b0b))).await;
    let raw = UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_read_timeout(Some(WAIT)).unwrap();
    let to = b.driver.local_addr();

    let good = data_frame(0x33, true, Address::Extended(B), A, PAN);
    let mut bad_fcs = good.clone();
    *bad_fcs.last_mut().unwrap() ^= 0xff;
    let mut bad_version = encode_datagram(DatagramKind::Data, &good);
    bad_version[4] = 9;
    let mut bad_kind = encode_datagram(DatagramKind::Data, &good);
    bad_kind[5] = 7;
    let mut bad_magic = encode_datagram(DatagramKind::Data, &good);
    bad_magic[0] = b'X';
    let garbage: Vec<Vec<u8>> = vec![
        b"hello".to_vec(),
        bad_magic,
        bad_version,
        bad_kind,
        encode_datagram(DatagramKind::Data, &[]),
        encode_datagram(DatagramKind::Data, &[0u8; 128]),
        // Bad FCS.
        encode_datagram(DatagramKind::Data, &bad_fcs),
        // Reserved frame type 0b100: does not parse.
        encode_datagram(DatagramKind::Data, &[0x04, 0x00, 0x01, 0, 0]),
        // A data frame where an ack must be, an ack where a data frame must be.
        encode_datagram(DatagramKind::Ack, &good),
        encode_datagram(DatagramKind::Data, &imm_ack(0x33)),
        // Well formed, for others: another PAN, another device, another short address.
        encode_datagram(
            DatagramKind::Data,
            &data_frame(1, true, Address::Extended(B), A, PanId(0x1234)),
        ),
        encode_datagram(
            DatagramKind::Data,
            &data_frame(2, true, Address::Extended(C), A, PAN),
        ),
        encode_datagram(
            DatagramKind::Data,
            &data_frame(3, true, Address::Short(ShortAddress(0x0c0c)), A, PAN),
        ),
        // An ack nobody waits for.
        encode_datagram(DatagramKind::Ack, &imm_ack(0x99)),
    ];
    for d in &garbage {
        raw.send_to(d, to).unwrap();
    }
    let s = b.stats_until(|s| s.rx_datagrams == 14).await;
    assert_eq!(s.rx_bad_header, 6);
    assert_eq!(s.rx_bad_fcs, 1);
    assert_eq!(s.rx_malformed, 3);
    assert_eq!(s.rx_filtered, 3);
    assert_eq!(s.acks_unexpected, 1);
    assert_eq!(s.rx_delivered, 0);
    assert_eq!(s.acks_sent, 0);
    b.quiet(Duration::from_millis(50)).await;

    // A good frame from the raw socket is delivered and acknowledged to the sender.
    raw.send_to(&encode_datagram(DatagramKind::Data, &good), to)
        .unwrap();
    assert_eq!(b.next_rx().await.frame, good);
    let mut buf = [0u8; 64];
    let (n, from) = raw.recv_from(&mut buf).unwrap();
    assert_eq!(from, to);
    assert_eq!(
        &buf[..n],
        encode_datagram(DatagramKind::Ack, &imm_ack(0x33)).as_slice()
    );
    // To our short address, with AR: also acknowledged.
    let short = data_frame(4, true, Address::Short(ShortAddress(0x0b0b)), A, PAN);
    raw.send_to(&encode_datagram(DatagramKind::Data, &short), to)
        .unwrap();
    assert_eq!(b.next_rx().await.frame, short);
    let (n, _) = raw.recv_from(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        encode_datagram(DatagramKind::Ack, &imm_ack(4)).as_slice()
    );
    let s = b.stats().await;
    assert_eq!((s.rx_delivered, s.acks_sent), (2, 2));
}

#[actix::test]
async fn a_radio_alone() {
    let mut a = Node::new(A, |c| {
        c.ack_wait = Duration::from_millis(5);
        c.max_frame_retries = 0;
    })
    .await;
    let bcast = Address::Short(ShortAddress::BROADCAST);
    a.driver.transmit(radio_tx(
        1,
        data_frame(1, false, bcast, A, PAN),
        false,
        bcast,
    ));
    a.driver
        .transmit(radio_tx(2, vec![0x41; 128], false, bcast));
    a.driver.transmit(radio_tx(
        3,
        data_frame(3, true, Address::Extended(B), A, PAN),
        true,
        Address::Extended(B),
    ));
    let statuses: Vec<(u64, MacStatus)> = [
        a.next_done().await,
        a.next_done().await,
        a.next_done().await,
    ]
    .iter()
    .map(|d| (d.token, d.status))
    .collect();
    assert_eq!(
        statuses,
        [
            (1, MacStatus::Success),
            (2, MacStatus::FrameTooLong),
            (3, MacStatus::NoAck)
        ]
    );
    let s = a.stats().await;
    assert_eq!((s.tx_attempts, s.tx_too_long), (2, 1));

    // Its own address in the peer list: its own datagrams are ignored.
    a.add_peer(a.driver.local_addr()).await;
    a.driver.transmit(radio_tx(
        4,
        data_frame(4, false, bcast, A, PAN),
        false,
        bcast,
    ));
    assert_eq!(a.next_done().await.status, MacStatus::Success);
    a.stats_until(|s| s.rx_own == 1).await;
    a.quiet(Duration::from_millis(50)).await;
}

#[test]
fn configuration_is_validated_and_formats_are_fixed() {
    let mut c = UdpRadioConfig::new("127.0.0.1:0".parse().unwrap(), A, PAN);
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.ack_wait, Duration::from_millis(20));
    assert_eq!(c.max_frame_retries, 3);
    c.loss = 1.5;
    assert_eq!(c.validate(), Err(UdpRadioConfigError::Loss(1.5)));
    c.loss = f64::NAN;
    assert!(matches!(c.validate(), Err(UdpRadioConfigError::Loss(_))));
    c.loss = 1.0;
    c.max_frame_retries = 8;
    assert_eq!(c.validate(), Err(UdpRadioConfigError::MaxFrameRetries(8)));
    c.max_frame_retries = 7;
    c.ack_wait = Duration::ZERO;
    assert_eq!(c.validate(), Err(UdpRadioConfigError::AckWait));

    // Check value of spec/mpx-wire-format.md §6.
    assert_eq!(imm_ack(0x56), [0x02, 0x00, 0x56, 0x0b, 0x82]);
    assert_eq!(
        encode_datagram(DatagramKind::Ack, &imm_ack(0x56)),
        [b'K', b'1', b'5', b'4', 1, 1, 0x02, 0x00, 0x56, 0x0b, 0x82]
    );
}

#[test]
fn bind_outside_a_system_is_refused_for_a_bad_config() {
    let mut c = UdpRadioConfig::new("127.0.0.1:0".parse().unwrap(), A, PAN);
    c.loss = -0.1;
    let err = actix::System::new()
        .block_on(UdpRadio::bind(c))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
