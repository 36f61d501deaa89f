//! Time for the actors: the system clock, or a virtual clock that a simulator advances.
//!
//! Every actor of the runtime reads `now` from a [`Clock`] and arms its single timer through a
//! [`TimerSlot`], so the same actors run against real time (a gateway, the UDP driver) and
//! against virtual time (the simulated medium, where a thousand radios must not wait for
//! simulated air time).
//!
//! # Virtual time
//!
//! A [`VirtualClock`] is a shared microsecond counter plus a queue of `(deadline, actor)`
//! wake-ups. Nothing advances it but its driver (the simulated medium in `radio-drivers`),
//! which repeats:
//!
//! 1. wait until every actor has processed every message ([`VirtualClock::settled`]);
//! 2. take the earliest deadline among its own events and [`VirtualClock::next_deadline`];
//! 3. [`VirtualClock::advance_to`] it, deliver its events and [`VirtualClock::fire_due`].
//!
//! Step 1 uses tokio's paused clock: on a runtime built with [`virtual_time_system`], tokio
//! advances its own clock only when no task is ready to run, so a one-microsecond sleep
//! completes exactly when the actor system has gone quiet. The tokio clock is used for nothing
//! else (it advances in millisecond ticks); all timestamps come from the virtual counter, with
//! microsecond resolution. Because the runtime is single-threaded and every random choice is
//! seeded, a run repeats exactly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix::{Actor, AsyncContext, Context, Handler, Message, Recipient, SpawnHandle};
use kmp_api::{Duration, Instant};

/// Asks an actor to look at its timers: sent by a [`TimerSlot`] when the deadline it armed has
/// come. Spurious wake-ups are allowed; the handler re-checks its deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Message)]
#[rtype(result = "()")]
pub struct Wake;

/// Where the runtime's actors take the time from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// Wall-clock time as microseconds since the Unix epoch (so that instants persisted by the
    /// PIB keep their meaning across restarts); timers are tokio timers.
    System,
    /// Simulated time, advanced by a simulator.
    Virtual(VirtualClock),
}

impl Clock {
    /// The current time.
    pub fn now(&self) -> Instant {
        match self {
            Clock::System => {
                let since = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                Instant::from_micros(u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
            }
            Clock::Virtual(v) => v.now(),
        }
    }

    /// Whether this is a virtual clock.
    pub fn is_virtual(&self) -> bool {
        matches!(self, Clock::Virtual(_))
    }
}

/// A timer wake-up queued on a [`VirtualClock`].
type TimerKey = (Instant, u64);

#[derive(Debug)]
struct VirtualInner {
    now: AtomicU64,
    seq: AtomicU64,
    timers: Mutex<BTreeMap<TimerKey, Recipient<Wake>>>,
    work: tokio::sync::Notify,
}

/// A shared virtual clock (see the [module docs](self)). Cloning gives another handle on the
/// same clock.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    inner: Arc<VirtualInner>,
}

impl Default for VirtualClock {
    fn default() -> Self {
        VirtualClock::new()
    }
}

impl VirtualClock {
    /// A clock at time zero with no timer.
    pub fn new() -> VirtualClock {
        VirtualClock {
            inner: Arc::new(VirtualInner {
                now: AtomicU64::new(0),
                seq: AtomicU64::new(0),
                timers: Mutex::new(BTreeMap::new()),
                work: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.inner.now.load(Ordering::Acquire))
    }

    /// Moves the clock forward to `t` (never backwards).
    pub fn advance_to(&self, t: Instant) {
        self.inner.now.fetch_max(t.as_micros(), Ordering::AcqRel);
    }

    /// Queues a [`Wake`] for `to` at `at`, and tells the driver there is work.
    pub fn schedule(&self, at: Instant, to: Recipient<Wake>) {
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        self.timers().insert((at, seq), to);
        self.inner.work.notify_one();
    }

    /// The earliest queued wake-up.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers().keys().next().map(|(t, _)| *t)
    }

    /// Sends every wake-up due at the current time; returns how many were sent.
    pub fn fire_due(&self) -> usize {
        let now = self.now();
        let due: Vec<Recipient<Wake>> = {
            let mut timers = self.timers();
            let later =
                timers.split_off(&(Instant::from_micros(now.as_micros().saturating_add(1)), 0));
            let due = std::mem::replace(&mut *timers, later);
            due.into_values().collect()
        };
        let n = due.len();
        for r in due {
            r.do_send(Wake);
        }
        n
    }

    /// Tells the driver that there is work (a frame to transmit); wakes [`Self::work_arrived`].
    pub fn poke(&self) {
        self.inner.work.notify_one();
    }

    /// Completes after the next [`Self::poke`] or [`Self::schedule`] (or at once if one came
    /// since the last call): the driver waits here when it has nothing to do.
    pub async fn work_arrived(&self) {
        self.inner.work.notified().await;
    }

    /// Completes when no task of the (paused, single-threaded) runtime is ready to run, i.e.
    /// when every actor has handled every message sent so far. Only meaningful on a runtime
    /// made by [`virtual_time_system`].
    pub async fn settled(&self) {
        tokio::time::sleep(std::time::Duration::from_micros(1)).await;
    }

    fn timers(&self) -> std::sync::MutexGuard<'_, BTreeMap<TimerKey, Recipient<Wake>>> {
        self.inner
            .timers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// An actix system on a single-threaded tokio runtime with a paused clock, as
/// [`VirtualClock::settled`] needs. Run the simulation inside it with
/// [`actix::SystemRunner::block_on`].
pub fn virtual_time_system() -> std::io::Result<actix::SystemRunner> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()?;
    Ok(actix::System::with_tokio_rt(move || rt))
}

/// The one timer of an actor: arms a [`Wake`] for the earliest deadline the actor reports,
/// on whichever [`Clock`] it runs.
#[derive(Debug, Default)]
pub struct TimerSlot {
    armed: Option<Instant>,
    handle: Option<SpawnHandle>,
}

impl TimerSlot {
    /// An unarmed slot.
    pub fn new() -> TimerSlot {
        TimerSlot::default()
    }

    /// Makes sure a [`Wake`] reaches the actor at `deadline` (or soon after). `None` disarms
    /// (on a virtual clock an already queued wake-up still arrives; it is harmless).
    pub fn set<A>(&mut self, clock: &Clock, ctx: &mut Context<A>, deadline: Option<Instant>)
    where
        A: Actor<Context = Context<A>> + Handler<Wake>,
    {
        match clock {
            Clock::System => {
                if deadline == self.armed {
                    return;
                }
                if let Some(h) = self.handle.take() {
                    ctx.cancel_future(h);
                }
                self.armed = deadline;
                if let Some(d) = deadline {
                    let wait: Duration = d.saturating_duration_since(clock.now());
                    self.handle = Some(ctx.notify_later(Wake, wait.into()));
                }
            }
            Clock::Virtual(v) => {
                let Some(d) = deadline else {
                    return;
                };
                let now = v.now();
                let needed = match self.armed {
                    None => true,
                    Some(a) => d < a || a < now,
                };
                if needed {
                    self.armed = Some(d.max(now));
                    v.schedule(d.max(now), ctx.address().recipient());
                }
            }
        }
    }

    /// Call first thing in the [`Wake`] handler: forgets a deadline that has passed.
    pub fn fired(&mut self, now: Instant) {
        if self.armed.is_some_and(|a| a <= now) {
            self.armed = None;
            self.handle = None;
        }
    }
}
