//! The server side of part 5: the **community store thread**, which carries out the
//! handler's community effects (registered channels, bans, operators, history in
//! batches, private messages kept for users away, address bans) on its own connection
//! and writes the audit log; the load of what the store holds at start; and the
//! [`Reloader`] a SIGHUP uses to change the configuration while the server runs.
//!
//! History is written in batches: a message waits at most [`FLUSH_EVERY`] (or until
//! [`FLUSH_BATCH`] are waiting), so a busy channel costs one transaction per batch rather
//! than one per message. A worker hands effects over with `try_send`; when the queue is
//! full the effect fails at once (a kept message is refused, history or a ban is not
//! stored and the failure counted and logged), never making a worker wait.
//!
//! An [`Order`](crate::outbox::Order) for a user goes straight to the result
//! queue of the worker that owns it (`try_send` as well: under overload a kick may be
//! lost, counted, rather than stall the worker that asked).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};

use super::jobs::{answer, named_thread, worker_for, ExecutorStats};
use crate::accounts::{
    CommunityStore, HistoryRow, MailRules, RefusalChange, Refusals, Service, StoreError,
};
use crate::config::ChannelSpec;
use crate::outbox::{AuditRecord, CommunityDone, CommunityEffect, Done};
use crate::redact;
use crate::settings::{Live, LiveSettings};
use crate::state::community::{AddrBan, Ban, Entry, Mask, Net};
use crate::state::{Kind, Meta, State};
use proto::time::utc;

/// Effects the community store thread's queue holds.
pub(crate) const COMMUNITY_QUEUE: usize = 8192;
/// History messages written in one transaction at most.
pub(crate) const FLUSH_BATCH: usize = 256;
/// The longest a history message waits to be written.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// Counters of the community store thread.
#[derive(Debug, Default)]
pub(crate) struct CommunityStats {
    /// Effects refused because the queue was full (or orders because a worker's was), and
    /// part-5 writes and reads that failed in the store.
    pub thread: ExecutorStats,
    /// Audit records written.
    pub audited: AtomicU64,
}

/// Where workers (and the cluster thread) hand part-5 effects; cheap to clone.
#[derive(Clone)]
pub(crate) struct Sink {
    tx: Sender<CommunityEffect>,
    done: Vec<Sender<Done>>,
    /// The counters.
    pub stats: Arc<CommunityStats>,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("queue", &self.tx.len())
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Hands `effect` over; returns the result to feed back at once when it could not be
    /// taken.
    pub(crate) fn submit(&self, effect: CommunityEffect) -> Option<Done> {
        if let CommunityEffect::Relay { ticket, order } = effect {
            let w = worker_for(ticket.route, self.done.len());
            let done = Done::Community(CommunityDone::Order { ticket, order });
            if self.stats.thread.offer(&self.done[w], done).is_some() {
                tracing::warn!("an order for a user was dropped: its worker's queue is full");
            }
            return None;
        }
        self.stats
            .thread
            .offer(&self.tx, effect)
            .and_then(|e| e.failed().map(Done::Community))
    }

    /// Effects waiting.
    pub(crate) fn depth(&self) -> usize {
        self.tx.len()
    }
}

/// Starts the community store thread; `done` are the workers' result queues, in order.
///
/// # Errors
/// When the audit log can't be opened or the thread can't start.
pub(crate) fn spawn(
    store: Arc<dyn CommunityStore>,
    done: Vec<Sender<Done>>,
    audit: Option<&Path>,
) -> std::io::Result<(Sink, JoinHandle<()>)> {
    let audit = match audit {
        Some(path) => Some(Audit::open(path)?),
        None => None,
    };
    let (tx, rx) = bounded(COMMUNITY_QUEUE);
    let stats = Arc::new(CommunityStats::default());
    let sink = Sink {
        tx,
        done: done.clone(),
        stats: stats.clone(),
    };
    let thread = named_thread("community-store".into(), move || {
        run(&*store, &rx, &done, audit, &stats)
    })?;
    Ok((sink, thread))
}

/// The audit log file, appended to.
struct Audit {
    file: std::fs::File,
    path: PathBuf,
}

impl Audit {
    /// Opens (creating it `0600`, as the data folder's files are) the audit log at `path`.
    /// It names who was kicked, banned and killed, and from which addresses: a file that
    /// others may read already is used, with a warning, since log rotation may have made
    /// it so on purpose.
    fn open(path: &Path) -> std::io::Result<Audit> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let mode = file.metadata()?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the audit log is readable by other users (mode {mode:o}); `chmod 600` it"
            );
        }
        Ok(Audit {
            file,
            path: path.to_owned(),
        })
    }

    fn write(&mut self, r: &AuditRecord) {
        // One line per action; fields are single words but the last, which takes the rest.
        // Every field is defused (control characters written as `\u{1b}`): none can end
        // the line, forge another, or reach the terminal of whoever reads the file.
        let line = format!(
            "{} UTC {} {} {} {}",
            utc(r.ms),
            redact::controls(&r.actor),
            redact::controls(&r.action),
            redact::controls(&r.target),
            redact::controls(&r.detail)
        );
        if let Err(e) = writeln!(self.file, "{}", line.trim_end()) {
            tracing::warn!(path = %self.path.display(), "cannot write the audit log: {e}");
        }
    }
}

fn run(
    store: &dyn CommunityStore,
    rx: &Receiver<CommunityEffect>,
    done: &[Sender<Done>],
    mut audit: Option<Audit>,
    stats: &CommunityStats,
) {
    let mut pending: Vec<HistoryRow> = Vec::new();
    let mut keep = 0usize;
    let mut deadline: Option<Instant> = None;
    let failed = |e: &StoreError, what: &str| stats.thread.store_failed(e, what);
    let written = |result: Result<(), StoreError>, what: &str| {
        if let Err(e) = result {
            failed(&e, what);
        }
    };
    loop {
        let effect = match deadline {
            Some(d) => match rx.recv_deadline(d) {
                Ok(e) => Some(e),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(e) => Some(e),
                Err(_) => break,
            },
        };
        let Some(effect) = effect else {
            flush(store, &mut pending, keep, &failed);
            deadline = None;
            continue;
        };
        match effect {
            CommunityEffect::SaveMessage {
                chan,
                message,
                keep: k,
            } => {
                pending.push((chan, message));
                keep = k;
                deadline.get_or_insert_with(|| Instant::now() + FLUSH_EVERY);
                if pending.len() >= FLUSH_BATCH {
                    flush(store, &mut pending, keep, &failed);
                    deadline = None;
                }
            }
            CommunityEffect::SaveChannel(c) => written(store.save_channel(&c), "storing a channel"),
            CommunityEffect::DeleteChannel { key } => {
                written(store.delete_channel(&key), "forgetting a channel")
            }
            CommunityEffect::SetOp { chan, account, on } => written(
                store.set_op(&chan, &account, on),
                "storing a channel operator",
            ),
            CommunityEffect::SaveBan { chan, ban } => {
                written(store.save_ban(&chan, &ban), "storing a ban")
            }
            CommunityEffect::DeleteBan { chan, mask } => {
                written(store.delete_ban(&chan, &mask), "forgetting a ban")
            }
            CommunityEffect::StoreMail {
                ticket,
                mail,
                account,
                limits,
            } => {
                // A stored mask that no longer parses refuses nobody.
                let refused = |masks: &[String]| {
                    masks
                        .iter()
                        .filter_map(|m| Mask::parse(m))
                        .any(|m| m.matches(&mail.from, account.as_deref()))
                };
                let stored = store
                    .store_mail(
                        &mail,
                        MailRules {
                            limits,
                            refused: &refused,
                        },
                    )
                    .map_err(|e| {
                        failed(&e, "keeping a private message");
                    });
                answer(
                    done,
                    Done::Community(CommunityDone::Mailed { ticket, stored }),
                );
            }
            CommunityEffect::SetRefusal {
                ticket,
                key,
                change,
                max,
            } => {
                let list = match change {
                    Some((mask, on)) => store.set_refusal(
                        &key,
                        RefusalChange {
                            mask: &mask,
                            on,
                            max,
                        },
                    ),
                    None => store.refusals(&key).map(Refusals::List),
                }
                .map_err(|e| {
                    failed(&e, "storing the senders a user refuses");
                });
                answer(
                    done,
                    Done::Community(CommunityDone::Refusals { ticket, list }),
                );
            }
            CommunityEffect::TakeMail { ticket, key } => {
                let mail = store.take_mail(&key).map_err(|e| {
                    failed(&e, "reading kept private messages");
                });
                answer(done, Done::Community(CommunityDone::Mail { ticket, mail }));
            }
            CommunityEffect::ForgetMailbox { key } => {
                let forgot = store.take_mail(&key).and_then(|_| {
                    for mask in store.refusals(&key)? {
                        store.set_refusal(
                            &key,
                            RefusalChange {
                                mask: &mask,
                                on: false,
                                max: 0,
                            },
                        )?;
                    }
                    Ok(())
                });
                written(forgot, "forgetting a mailbox");
            }
            CommunityEffect::SaveAddrBan(b) => {
                written(store.save_addr_ban(&b), "storing an address ban")
            }
            CommunityEffect::DeleteAddrBan { net } => {
                written(store.delete_addr_ban(&net), "forgetting an address ban")
            }
            CommunityEffect::Audit(record) => {
                tracing::info!(
                    target: "udpchat::audit",
                    actor = %redact::controls(&record.actor),
                    action = %redact::controls(&record.action),
                    target_ = %redact::controls(&record.target),
                    detail = %redact::controls(&record.detail),
                    "audit"
                );
                if let Some(a) = audit.as_mut() {
                    a.write(&record);
                }
                stats.audited.fetch_add(1, Ordering::Relaxed);
            }
            CommunityEffect::Relay { .. } => {}
        }
    }
    flush(store, &mut pending, keep, &failed);
}

fn flush(
    store: &dyn CommunityStore,
    pending: &mut Vec<HistoryRow>,
    keep: usize,
    failed: &dyn Fn(&StoreError, &str),
) {
    if pending.is_empty() {
        return;
    }
    if let Err(e) = store.append_history(pending, keep) {
        failed(&e, "storing history");
    }
    pending.clear();
}

/// Loads what the store holds into `state` at start: registered channels (a configured
/// channel of the same title wins, keeping its stored operators and bans), lasting
/// operators, bans, address bans and, when history is kept in the store, each kept
/// channel's last messages.
///
/// # Errors
/// When the store fails.
pub(crate) fn load(
    store: &dyn CommunityStore,
    state: &State,
    live: &Live,
) -> Result<(), StoreError> {
    let snap = store.snapshot()?;
    // Bans that ended while the server was down are forgotten, in memory and in the store,
    // so that the stored ones stay as few as those in force.
    let now_ms = crate::handler::unix_ms(std::time::SystemTime::now());
    let expired = |until_ms: u64| until_ms != 0 && until_ms <= now_ms;
    for c in &snap.channels {
        if state.channel_id(&c.title).is_some() {
            continue;
        }
        let mut meta = Meta::created(&c.description, &c.founder, Some(&c.founder));
        meta.invite_only = c.invite_only;
        meta.moderated = c.moderated;
        meta.topic_locked = c.topic_locked;
        // The founder's account stays an operator (Meta::created made it one).
        meta.limit = c.limit;
        let _ = state.create_channel(&c.title, meta);
    }
    for (chan, account) in &snap.ops {
        if let Some(ch) = state.channel_by_title(chan) {
            ch.with_meta(|m| {
                if !m.is_op_account(account) {
                    m.ops.push(account.as_str().into());
                }
            });
        }
    }
    for (chan, stored) in &snap.bans {
        if expired(stored.until_ms) {
            store.delete_ban(chan, &stored.mask)?;
            continue;
        }
        if let (Some(ch), Some(ban)) = (state.channel_by_title(chan), Ban::from_stored(stored)) {
            ch.with_meta(|m| m.bans.push(ban));
        }
    }
    for b in &snap.addr_bans {
        if expired(b.until_ms) {
            store.delete_addr_ban(&b.net)?;
            continue;
        }
        if let Some(net) = Net::parse(&b.net) {
            let ban = AddrBan {
                net,
                until_ms: b.until_ms,
                by: b.by.as_str().into(),
                reason: b.reason.as_str().into(),
            };
            state.addr_bans().set(ban, usize::MAX, 0);
        }
    }
    if live.persist_history && live.history > 0 {
        for ch in state.channels() {
            if ch.with_meta(|m| m.kind) == Kind::Temporary {
                continue;
            }
            let rows = store.history(&ch.title.to_lowercase(), live.history)?;
            if let Some(last) = rows.last() {
                state.note_message_id(last.id);
            }
            let entries = rows
                .into_iter()
                .map(|m| Entry {
                    id: m.id,
                    ms: m.ms,
                    nick: m.nick.into(),
                    text: m.text.into(),
                })
                .collect();
            ch.with_history(|h| h.load(entries, live.history));
        }
    }
    Ok(())
}

/// Changes the configuration of a running server (a SIGHUP): the live settings at once,
/// the cap on users, and the configured channels (added, description changed, or no
/// longer configured: then temporary, gone when empty). Nobody is logged off.
#[derive(Debug, Clone)]
pub struct Reloader {
    pub(super) state: Arc<State>,
    pub(super) live: Arc<LiveSettings>,
    /// For the warnings about configured operators without an operator's account.
    pub(super) accounts: Arc<Service>,
}

impl Reloader {
    /// Applies a new configuration; returns what changed, one line each, for the log.
    pub fn apply(&self, live: Live, channels: &[ChannelSpec], max_users: usize) -> Vec<String> {
        let mut changes = self.state.reconcile_configured(channels);
        let old = self.live.get();
        let mut note = |what: &str, changed: bool| {
            if changed {
                changes.push(format!("{what} changed"));
            }
        };
        note("motd", old.motd != live.motd);
        note("operators", old.operators != live.operators);
        note(
            "limits",
            (
                old.max_channels_per_user,
                old.max_created_channels,
                old.max_channels_per_creator,
                old.max_channels_per_prefix,
                old.max_title_len,
                old.history,
                old.persist_history,
                old.mailbox,
                old.max_bans,
                old.max_server_bans,
            ) != (
                live.max_channels_per_user,
                live.max_created_channels,
                live.max_channels_per_creator,
                live.max_channels_per_prefix,
                live.max_title_len,
                live.history,
                live.persist_history,
                live.mailbox,
                live.max_bans,
                live.max_server_bans,
            ),
        );
        self.state.set_max_users(max_users);
        self.accounts.reserve(&live.operators);
        self.live.set(live);
        changes
    }

    /// The live settings now.
    pub fn live(&self) -> Arc<Live> {
        self.live.get()
    }

    /// What is wrong with the configured operators now ([`operator_warnings`]), to log
    /// after a reload.
    pub fn operator_warnings(&self) -> Vec<String> {
        operator_warnings(&self.live.get(), &self.accounts, &self.state)
    }
}

/// A warning for each configured operator that nobody is: no account (the nickname is
/// reserved, but nobody can log in to it), or an account not marked as an operator's
/// (one registered over the network, perhaps by someone else before the name was
/// listed); one for each listed nickname a guest holds (it logged in before a reload
/// listed the name: it has no rights, but it passes for the operator until it logs off
/// or is killed); and one when operators are configured but accounts are off.
pub fn operator_warnings(live: &Live, accounts: &Service, state: &State) -> Vec<String> {
    if !live.operators.is_empty() && !accounts.enabled() {
        return vec![
            "operators are configured but accounts are off (--accounts-off): nobody is a \
             server operator"
                .into(),
        ];
    }
    let mut warnings = operator_warnings_with(
        &live.operators,
        |k| accounts.is_registered(k),
        |k| accounts.is_operator_account(k),
    );
    for op in &live.operators {
        let held = state.address_of(op).and_then(|a| Some((a, state.user(a)?)));
        if let Some((addr, user)) = held.filter(|(_, u)| u.session.is_none()) {
            warnings.push(format!(
                "operator nickname {} is held by a guest at {addr} (logged in before it was \
                 listed): it has no operator rights; /kill it if it is not the operator",
                redact::controls(&user.nick)
            ));
        }
    }
    warnings
}

/// The warnings of [`operator_warnings`] for the configured `operators` (keys), given
/// which keys have an account and which are marked as operators' (`chat-server accounts
/// list` asks its store).
pub fn operator_warnings_with(
    operators: &[String],
    registered: impl Fn(&str) -> bool,
    operator: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for op in operators {
        if !registered(op) {
            warnings.push(format!(
                "operator {op} has no account, so nobody is that operator (the nickname is \
                 reserved): make it with `chat-server accounts add {op} --operator`"
            ));
        } else if !operator(op) {
            warnings.push(format!(
                "operator {op}'s account is not marked as an operator's, so nobody is that \
                 operator: it may have been registered by anyone. If it is yours, run \
                 `chat-server accounts set {op} --operator`; if not, `chat-server accounts \
                 delete {op}` and `chat-server accounts add {op} --operator`"
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::{MemoryCommunity, StoredAddrBan, StoredBan, StoredChannel};

    #[test]
    fn the_audit_log_is_made_private_and_its_lines_carry_no_control_characters() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let mut audit = Audit::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Whatever a request lets through (a remote server's event, a future field),
        // nothing can end the line, forge another, or reach the reader's terminal.
        audit.write(&AuditRecord {
            ms: 0,
            actor: "ro\u{1b}]0;x\u{7}ot".into(),
            action: "kick".into(),
            target: "Pets\nforged".into(),
            detail: "a\r\n1970-01-01 00:00:00 UTC root oper-kill all \u{9b}2J".into(),
        });
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.trim_end().chars().any(char::is_control), "{text:?}");
        assert!(text.contains("ro\\u{1b}]0;x\\u{7}ot"), "{text}");
    }

    #[test]
    fn load_makes_registered_channels_and_forgets_bans_that_ended() {
        let store = MemoryCommunity::default();
        store
            .save_channel(&StoredChannel {
                title: "Club".into(),
                description: "ours".into(),
                founder: "ann".into(),
                created_ms: 1,
                invite_only: true,
                moderated: false,
                topic_locked: true,
                limit: None,
            })
            .unwrap();
        let ban = |mask: &str, until_ms| StoredBan {
            mask: mask.into(),
            until_ms,
            by: "ann".into(),
            reason: String::new(),
        };
        store.save_ban("club", &ban("old", 1)).unwrap();
        store.save_ban("club", &ban("new", 0)).unwrap();
        store
            .save_addr_ban(&StoredAddrBan {
                net: "10.0.0.0/8".into(),
                until_ms: 1,
                by: "op".into(),
                reason: String::new(),
            })
            .unwrap();
        let state = State::new(&crate::config::classic_channels(), 10);
        load(&store, &state, &Live::default()).unwrap();
        let ch = state.channel_by_title("club").unwrap();
        assert_eq!(
            ch.with_meta(|m| (m.kind, m.invite_only, m.bans.len(), m.is_op_account("ann"))),
            (Kind::Registered, true, 1, true)
        );
        let snap = store.snapshot().unwrap();
        assert_eq!(snap.bans.len(), 1);
        assert!(snap.addr_bans.is_empty() && state.addr_bans().list().is_empty());
    }
}
