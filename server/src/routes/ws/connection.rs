//! One dashboard's connection: its start (a snapshot or the events it
//! missed), then every event as the log publishes it, paced so that many
//! dashboards together stay within the server's budget of socket writes.
//!
//! Why pacing: at 2,000 dashboards and 100 events a second, one write per
//! event per dashboard is 200,000 `sendto` calls a second, and the kernel's
//! send path becomes most of the server's work. So a connection that has
//! not written for a while writes at once, and one that wrote less than its
//! *gap* ago waits out the rest of the gap and sends everything queued
//! meanwhile in one write. The gap is the open connections divided by the
//! budget: under a millisecond for a handful of dashboards (then nothing
//! waits), and at 2,000 dashboards just long enough to keep the server's
//! writes near the budget. The store's commits no longer set the rhythm:
//! each socket batches by itself, and only when it is busy.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, close_code};
use engine::{
    Feed, FeedStart,
    event_log::Published,
    protocol::{Envelope, ServerMessage},
};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::{
    broadcast::{
        self,
        error::{RecvError, TryRecvError},
    },
    watch,
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// Most frames written before one flush.
const MAX_FRAMES_PER_FLUSH: usize = 256;

/// Gaps shorter than this are not worth a timer (tokio's timers tick in
/// milliseconds): the connection writes at once.
const SHORTEST_GAP: Duration = Duration::from_millis(1);

/// How often a connection may write.
#[derive(Clone)]
pub(super) struct Pacing {
    /// Socket writes a second for all connections together; `None`: no
    /// limit.
    pub(super) budget: Option<NonZeroU32>,
    /// How many connections are open (and share the budget).
    pub(super) open: Arc<watch::Sender<u32>>,
}

impl Pacing {
    /// The least time between two writes of one connection now, if any.
    fn gap(&self) -> Option<Duration> {
        gap(self.budget, *self.open.borrow())
    }
}

/// The least time between two writes of one connection when `open`
/// connections share `budget` writes a second; `None` below
/// [`SHORTEST_GAP`].
pub(super) fn gap(budget: Option<NonZeroU32>, open: u32) -> Option<Duration> {
    let gap = Duration::from_secs_f64(f64::from(open) / f64::from(budget?.get()));
    (gap >= SHORTEST_GAP).then_some(gap)
}

/// What a connection needs besides its socket and its feed.
pub(super) struct Rhythm {
    /// Cancelled at shutdown: the connection sends what is queued, then a
    /// close frame.
    pub(super) closing: CancellationToken,
    /// How often the client is pinged.
    pub(super) heartbeat: Duration,
    /// How often the connection may write.
    pub(super) pacing: Pacing,
}

/// How a write went.
enum Written {
    /// Everything taken from the queue went out.
    Sent,
    /// The connection's queue overflowed: this many events were lost to it.
    Lagged(u64),
    /// The socket is closed.
    Gone,
}

fn encode(envelope: &Envelope) -> Message {
    Message::Text(Utf8Bytes::from(
        serde_json::to_string(envelope).expect("protocol types always serialize"),
    ))
}

/// A published event's shared JSON, as a frame, without copying it.
fn frame(event: &Published) -> Message {
    struct Json(Arc<str>);
    impl AsRef<[u8]> for Json {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    let bytes = axum::body::Bytes::from_owner(Json(event.json()));
    Message::Text(Utf8Bytes::try_from(bytes).expect("JSON is UTF-8"))
}

pub(super) fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

/// Counts the connection in `antibody_ws_connections` while it lives.
struct Connected;

impl Connected {
    fn new() -> Self {
        metrics::gauge!("antibody_ws_connections").increment(1.0);
        Self
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        metrics::gauge!("antibody_ws_connections").decrement(1.0);
    }
}

/// Counts one socket write of `frames` frames.
fn count_write(frames: u64) {
    metrics::counter!("antibody_ws_messages_sent_total").increment(frames);
    metrics::counter!("antibody_ws_writes_total").increment(1);
}

/// Sends the feed's start; the last `seq` it holds, or `None` when the
/// socket closed.
async fn send_start<S>(socket: &mut S, start: FeedStart) -> Option<u64>
where
    S: Sink<Message> + Unpin,
{
    let (frames, last_sent): (Vec<Message>, u64) = match start {
        FeedStart::Replay(events) => (
            events.iter().map(|e| frame(e)).collect(),
            events.last().map_or(0, |e| e.seq),
        ),
        FeedStart::Snapshot(snapshot) => {
            let seq = snapshot.last_seq;
            let message = encode(&Envelope {
                seq,
                ts: chrono::Utc::now(),
                message: ServerMessage::Snapshot { snapshot: *snapshot },
            });
            (vec![message], seq)
        }
    };
    let count = frames.len() as u64;
    if count == 0 {
        return Some(last_sent);
    }
    for message in frames {
        socket.feed(message).await.ok()?;
    }
    socket.flush().await.ok()?;
    count_write(count);
    Some(last_sent)
}

/// Writes `first` (when given) and whatever else is queued, up to
/// [`MAX_FRAMES_PER_FLUSH`], in one flush.
async fn write_queued<S>(
    socket: &mut S,
    live: &mut broadcast::Receiver<Arc<Published>>,
    first: Option<Arc<Published>>,
    last_sent: &mut u64,
) -> Written
where
    S: Sink<Message> + Unpin,
{
    let mut next = first.map(Ok);
    let mut frames = 0;
    let mut lagged = None;
    while frames < MAX_FRAMES_PER_FLUSH {
        let event = match next.take().unwrap_or_else(|| live.try_recv()) {
            Ok(event) => event,
            Err(TryRecvError::Lagged(missed)) => {
                lagged = Some(missed);
                break;
            }
            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
        };
        debug_assert!(event.seq > *last_sent, "events reach a connection in seq order");
        *last_sent = event.seq;
        frames += 1;
        if socket.feed(frame(&event)).await.is_err() {
            return Written::Gone;
        }
    }
    if frames > 0 {
        if socket.flush().await.is_err() {
            return Written::Gone;
        }
        count_write(frames as u64);
    }
    lagged.map_or(Written::Sent, Written::Lagged)
}

/// The connection fell `missed` events behind: its queue overflowed. The
/// others are never slowed down for it; it is told to resync and closed,
/// and resumes from its last `seq` (or gets a fresh snapshot when that is
/// too old).
async fn resync<S>(socket: &mut S, last_sent: u64, missed: u64)
where
    S: Sink<Message> + Unpin,
{
    warn!(missed, "a dashboard fell behind; asking it to resync");
    metrics::counter!("antibody_ws_resyncs_total").increment(1);
    let resync = Envelope {
        seq: last_sent,
        ts: chrono::Utc::now(),
        message: ServerMessage::Resync {
            reason: format!("this connection fell {missed} events behind; resume from your last seq"),
        },
    };
    let _ = socket.feed(encode(&resync)).await;
    let _ = socket
        .send(close(close_code::AGAIN, "lagged: resume from your last seq"))
        .await;
}

/// Serves one connection until either side closes it.
pub(super) async fn serve<S>(mut socket: S, feed: Feed, rhythm: Rhythm)
where
    S: Sink<Message> + Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let _connected = Connected::new();
    let Feed { start, mut live } = feed;
    let Some(mut last_sent) = send_start(&mut socket, start).await else {
        return;
    };
    // A ping every `heartbeat`; a client that has not answered the last one
    // when the next is due is gone (a dead network, a frozen tab).
    let heartbeat = rhythm.heartbeat;
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
    let mut awaiting_pong = false;
    // Armed after a write while the connection must wait out its gap;
    // what is published meanwhile stays in its queue.
    let quiet = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(quiet);
    let mut quieting = false;
    loop {
        tokio::select! {
            biased;
            () = &mut quiet, if quieting => quieting = false,
            event = live.recv(), if !quieting => {
                let written = match event {
                    Ok(event) => write_queued(&mut socket, &mut live, Some(event), &mut last_sent).await,
                    Err(RecvError::Lagged(missed)) => Written::Lagged(missed),
                    Err(RecvError::Closed) => return,
                };
                match written {
                    Written::Sent => {}
                    Written::Lagged(missed) => return resync(&mut socket, last_sent, missed).await,
                    Written::Gone => return,
                }
                if let Some(gap) = rhythm.pacing.gap() {
                    quiet.as_mut().reset(tokio::time::Instant::now() + gap);
                    quieting = true;
                }
            },
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                // Clients send nothing but control frames; any frame shows
                // the connection is alive.
                Some(Ok(_)) => awaiting_pong = false,
            },
            _ = pings.tick() => {
                if awaiting_pong {
                    debug!("a dashboard missed its heartbeat; closing");
                    let _ = socket.send(close(close_code::AWAY, "no answer to ping")).await;
                    return;
                }
                awaiting_pong = true;
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            },
            () = rhythm.closing.cancelled() => {
                // What is already published (such as the interruptions
                // published at shutdown) goes out before the close frame,
                // even in the middle of a gap.
                debug!("closing a dashboard for shutdown");
                if let Written::Sent = write_queued(&mut socket, &mut live, None, &mut last_sent).await {
                    let _ = socket.send(close(close_code::AWAY, "server shutting down")).await;
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        pin::Pin,
        sync::Mutex,
        task::{Context, Poll},
    };

    use engine::event_log::EventLog;
    use futures::channel::mpsc;
    use tokio::time::Instant;

    use super::*;

    #[test]
    fn the_gap_shares_the_budget_between_open_connections_and_is_none_when_tiny() {
        let budget = NonZeroU32::new(50_000);
        assert_eq!(gap(budget, 10), None, "a handful of dashboards never waits");
        assert_eq!(gap(budget, 49), None);
        assert_eq!(gap(budget, 50), Some(Duration::from_millis(1)));
        assert_eq!(gap(budget, 2_000), Some(Duration::from_millis(40)));
        assert_eq!(gap(None, 100_000), None, "no budget, no pacing");
    }

    /// One write: when (since the connection opened), and each frame it
    /// carried, as [`describe`] writes it.
    type Write = (Duration, Vec<String>);

    /// Every write the connection made.
    #[derive(Clone, Default)]
    struct Writes(Arc<Mutex<Vec<Write>>>);

    /// A socket in memory: frames fed wait until a flush, which records
    /// them as one write; the client's frames come from a channel.
    struct FakeSocket {
        since: Instant,
        fed: Vec<String>,
        writes: Writes,
        from_client: mpsc::UnboundedReceiver<Result<Message, axum::Error>>,
    }

    fn describe(message: &Message) -> String {
        match message {
            Message::Text(text) => {
                let envelope: serde_json::Value = serde_json::from_str(text).unwrap();
                format!("{}:{}", envelope["type"].as_str().unwrap(), envelope["seq"])
            }
            Message::Close(Some(frame)) => format!("close {}", frame.code),
            other => format!("{other:?}"),
        }
    }

    impl Sink<Message> for FakeSocket {
        type Error = axum::Error;

        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn start_send(mut self: Pin<&mut Self>, message: Message) -> Result<(), Self::Error> {
            self.fed.push(describe(&message));
            Ok(())
        }

        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            if !self.fed.is_empty() {
                let write = (self.since.elapsed(), std::mem::take(&mut self.fed));
                self.writes.0.lock().unwrap().push(write);
            }
            Poll::Ready(Ok(()))
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            self.poll_flush(cx)
        }
    }

    impl Stream for FakeSocket {
        type Item = Result<Message, axum::Error>;

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            self.from_client.poll_next_unpin(cx)
        }
    }

    /// A connection to an in-memory log, with `open` connections sharing
    /// `budget`; returns the log, the writes, the client's sender (its
    /// frames; dropping it hangs up) and the shutdown token.
    fn connect(
        budget: u32,
        open: u32,
    ) -> (
        EventLog,
        Writes,
        mpsc::UnboundedSender<Result<Message, axum::Error>>,
        CancellationToken,
    ) {
        let log = EventLog::new(100, 100);
        let subscription = log.subscribe_since(0);
        let writes = Writes::default();
        let (client, from_client) = mpsc::unbounded();
        let socket = FakeSocket {
            since: Instant::now(),
            fed: Vec::new(),
            writes: writes.clone(),
            from_client,
        };
        let closing = CancellationToken::new();
        let rhythm = Rhythm {
            closing: closing.clone(),
            heartbeat: Duration::from_secs(3_600),
            pacing: Pacing {
                budget: NonZeroU32::new(budget),
                open: Arc::new(watch::Sender::new(open)),
            },
        };
        let feed = Feed {
            start: FeedStart::Replay(subscription.backlog),
            live: subscription.live,
        };
        tokio::spawn(serve(socket, feed, rhythm));
        (log, writes, client, closing)
    }

    fn event() -> ServerMessage {
        ServerMessage::SwarmStats { agents: Vec::new() }
    }

    /// The frames of events `seqs`, as [`describe`] writes them.
    fn events(seqs: &[u64]) -> Vec<String> {
        seqs.iter().map(|s| format!("swarm_stats:{s}")).collect()
    }

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    /// Lets the connection's task run, at the same instant.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_writes_each_event_at_once() {
        // 10 connections share 50,000 writes a second: no gap.
        let (log, writes, _client, _closing) = connect(50_000, 10);
        for _ in 0..3 {
            log.append(event());
            settle().await;
            tokio::time::sleep(ms(2)).await;
        }
        let writes = writes.0.lock().unwrap().clone();
        assert_eq!(
            writes,
            [(ms(0), events(&[1])), (ms(2), events(&[2])), (ms(4), events(&[3]))],
            "an empty replay writes nothing"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_connection_sends_what_queued_during_its_gap_in_one_write() {
        // 2,000 connections share 20,000 writes a second: 100 ms apart.
        let (log, writes, _client, _closing) = connect(20_000, 2_000);
        log.append(event());
        settle().await;
        for _ in 0..3 {
            tokio::time::sleep(ms(10)).await;
            log.append(event());
        }
        tokio::time::sleep(ms(65)).await;
        settle().await;
        assert_eq!(writes.0.lock().unwrap().len(), 1, "the gap is not over at 95 ms");
        tokio::time::sleep(ms(100)).await;
        settle().await;
        // Idle again once the gap after the last write passes: at once.
        tokio::time::sleep(ms(150)).await;
        log.append(event());
        settle().await;
        let writes = writes.0.lock().unwrap().clone();
        assert_eq!(
            writes,
            [
                (ms(0), events(&[1])),
                (ms(100), events(&[2, 3, 4])),
                (ms(345), events(&[5]))
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_in_a_gap_sends_what_is_queued_before_the_close_frame() {
        let (log, writes, _client, closing) = connect(1_000, 1_000);
        log.append(event());
        settle().await;
        log.append(event());
        log.append(event());
        tokio::time::sleep(ms(5)).await;
        closing.cancel();
        settle().await;
        let writes = writes.0.lock().unwrap().clone();
        assert_eq!(
            writes,
            [
                (ms(0), events(&[1])),
                (ms(5), events(&[2, 3])),
                (ms(5), vec!["close 1001".to_owned()]),
            ],
            "the gap (1 s) was cut short"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_too_far_behind_is_told_to_resync_and_closed() {
        // A queue of 100 (the log's capacity) and a gap of a second: 150
        // events in the gap overflow it.
        let (log, writes, _client, _closing) = connect(1, 1);
        log.append(event());
        settle().await;
        for _ in 0..150 {
            log.append(event());
        }
        tokio::time::sleep(ms(1_000)).await;
        settle().await;
        let writes = writes.0.lock().unwrap().clone();
        let last = writes.last().unwrap();
        assert_eq!(last.0, ms(1_000));
        assert_eq!(last.1, ["resync:1", "close 1013"], "{writes:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_hangs_up_ends_the_connection() {
        let (log, writes, client, _closing) = connect(50_000, 1);
        drop(client);
        settle().await;
        log.append(event());
        settle().await;
        assert!(writes.0.lock().unwrap().is_empty());
    }
}
