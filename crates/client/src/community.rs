//! The client's side of part 5: how the community events are shown, with history and
//! kept private messages set apart from live ones (a `[history ...]` or `[kept ...]`
//! mark with the time they were sent, in UTC), and what the client remembers to catch up
//! after it logs in again ([`CatchUp`]).

use std::collections::BTreeMap;

use crate::text::sanitize;
use proto::time::utc;
use proto::{Event, Request};

/// The line shown for a part-5 event (starting with a tab), or `None` for one the client
/// consumes silently.
pub(crate) fn render(event: &Event<'_>) -> Option<String> {
    let s = sanitize;
    Some(match event {
        Event::HelloAck { .. } => return None,
        Event::Motd { text } => format!("\t| {}", s(text)),
        Event::ChanNotice {
            title,
            actor,
            action,
            args,
        } => notice(&s(title), &s(actor), action, &s(args)),
        Event::ChanModes {
            title,
            modes,
            limit,
            founder,
        } => format!(
            "\t[{}] modes {}, {}, founded by {}",
            s(title),
            s(modes),
            member_limit(*limit),
            s(founder)
        ),
        Event::ChanEntry { title, kind, text } => {
            format!("\t[{}] {} {}", s(title), s(kind), s(text))
        }
        Event::Invited { title, by } => format!(
            "\t<{} invites you into {}; /join {} to go in>",
            s(by),
            s(title),
            s(title)
        ),
        Event::HistoryMsg {
            title,
            ms,
            sender,
            text,
            ..
        } => format!(
            "\t[history {}] {} [{}]: {}",
            utc(*ms),
            s(sender),
            s(title),
            s(text)
        ),
        Event::HistoryEnd { title, last, more } => match more {
            0 => format!("\t-- end of the history of {} --", s(title)),
            n => format!(
                "\t-- {n} more in the history of {}: /history {} since {last} --",
                s(title),
                s(title)
            ),
        },
        Event::StoredPrivate { ms, sender, text } => format!(
            "\t[kept {}] {} [**private**]: {}",
            utc(*ms),
            s(sender),
            s(text)
        ),
        Event::PrivateStored { recipient } => format!(
            "\t<{} is away; your message is kept until they log in>",
            s(recipient)
        ),
        Event::MailRefusals { masks: "" } => {
            "\t<messages kept while you are away: refusing nobody>".to_owned()
        }
        Event::MailRefusals { masks } => format!(
            "\t<messages kept while you are away: refusing {}>",
            s(&masks.replace(' ', ", "))
        ),
        Event::ServerNotice { from, text } => {
            format!("\t*** Notice from {}: {} ***", s(from), s(text))
        }
        Event::StatusItem { key, value } => format!("\t{}: {}", s(key), s(value)),
        Event::OperAck {
            action,
            target,
            detail,
        } => {
            let detail = if detail.is_empty() {
                String::new()
            } else {
                format!(" ({})", s(detail))
            };
            format!("\t<done: {} {}{detail}>", s(action), s(target))
        }
        _ => return None,
    })
}

/// Whether a shown line (its leading tab taken off) is one of history or a kept private
/// message, or the end of one: the full-screen client shows them dimmed, apart from live
/// ones. Only the look depends on it: a nickname made to resemble the mark dims its own
/// lines, nothing more.
pub(crate) fn is_past(line: &str) -> bool {
    line.starts_with("[history ")
        || line.starts_with("[kept ")
        || (line.starts_with("-- ") && line.ends_with(" --"))
}

/// A channel's member limit in words.
fn member_limit(limit: u64) -> String {
    match limit {
        0 => "no member limit".to_owned(),
        n => format!("at most {n} members"),
    }
}

/// A `CHAN_NOTICE` in words; all arguments already defused.
fn notice(title: &str, actor: &str, action: &str, args: &str) -> String {
    let (first, rest) = args.split_once(' ').unwrap_or((args, ""));
    match action {
        "create" => format!("\t<{actor} created {title} ({first}): {rest}>"),
        "topic" => format!("\t<{actor} set the topic of {title}: {args}>"),
        "kick" => format!("\t<{actor} removed {first} from {title}: {rest}>"),
        "ban" => {
            let (secs, reason) = rest.split_once(' ').unwrap_or((rest, ""));
            let how_long = match secs {
                "0" | "" => "until lifted".to_owned(),
                n => format!("for {n} s"),
            };
            let reason = if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            };
            format!("\t<{actor} banned {first} from {title} {how_long}{reason}>")
        }
        "unban" => format!("\t<{actor} lifted the ban on {args} in {title}>"),
        "mode" => format!("\t<{actor} set mode {args} on {title}>"),
        "invite" => format!("\t<{actor} invited {args} into {title}>"),
        "drop" => format!("\t<{actor} dropped the registration of {title}>"),
        other => format!("\t<{actor} {} {args} in {title}>", sanitize(other)),
    }
}

/// What the client remembers of each channel it is in, to ask for what it missed after
/// it logs in again: the id of the last history message it saw, or else the last live
/// messages (sender and text) to find its place in the history.
#[derive(Debug, Default, Clone)]
pub(crate) struct CatchUp {
    channels: BTreeMap<String, Seen>,
    /// Channels whose catch-up answer is coming: its messages are held until its end.
    pending: BTreeMap<String, Pending>,
}

/// A catch-up answer on its way.
#[derive(Debug, Default, Clone)]
struct Pending {
    /// Its messages so far.
    held: Vec<Held>,
    /// The last live messages seen before the connection was lost: what follows them in
    /// the answer was missed.
    seen: Vec<(String, String)>,
    /// Live messages shown since the request (bounded): the answer may hold them too.
    live_since: Vec<(String, String)>,
}

/// A history message held until the whole catch-up answer is in.
#[derive(Debug, Clone)]
struct Held {
    id: u64,
    ms: u64,
    sender: String,
    text: String,
}

impl Held {
    /// The message a `HISTORY_MSG` holds.
    fn of(event: &Event<'_>) -> Option<Held> {
        let Event::HistoryMsg {
            id,
            ms,
            sender,
            text,
            ..
        } = *event
        else {
            return None;
        };
        Some(Held {
            id,
            ms,
            sender: sender.to_owned(),
            text: text.to_owned(),
        })
    }
}

/// What the session does with an event, as [`CatchUp::intercept`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Intercept {
    /// Show it as usual.
    Pass,
    /// Part of a catch-up answer: hold it.
    Hold,
    /// The end of a catch-up answer: show these lines (what was missed) instead.
    Release(Vec<String>),
}

#[derive(Debug, Default, Clone)]
struct Seen {
    /// The last history message id shown.
    last_id: Option<u64>,
    /// Live messages since (bounded), oldest first.
    live: Vec<(String, String)>,
}

/// Channels remembered at most (a server could claim to have joined us to any number).
const MAX_CHANNELS: usize = 512;
/// Live messages remembered per channel.
const LIVE_KEPT: usize = 20;
/// Messages asked for after a new login when the place can't be found by id.
pub(crate) const CATCH_UP: u64 = 50;

/// Appends `item` to `list`, keeping the last [`LIVE_KEPT`].
fn push_bounded(list: &mut Vec<(String, String)>, item: (String, String)) {
    list.push(item);
    if list.len() > LIVE_KEPT {
        list.remove(0);
    }
}

impl CatchUp {
    /// Notes an event the client received.
    pub(crate) fn note(&mut self, event: &Event<'_>) {
        match event {
            Event::JoinAck(info) if self.channels.len() < MAX_CHANNELS => {
                self.channels.entry(info.title.to_owned()).or_default();
            }
            Event::PartAck(info) => {
                self.channels.remove(info.title);
                self.pending.remove(info.title);
            }
            Event::PublicMsg {
                title,
                sender,
                text,
            } => {
                let message = ((*sender).to_owned(), (*text).to_owned());
                if let Some(p) = self.pending.get_mut(*title) {
                    push_bounded(&mut p.live_since, message.clone());
                }
                // Only channels joined: what the server says of others is not kept.
                if let Some(seen) = self.channels.get_mut(*title) {
                    push_bounded(&mut seen.live, message);
                }
            }
            Event::HistoryMsg { title, id, .. } => {
                if let Some(seen) = self.channels.get_mut(*title) {
                    seen.last_id = Some(*id);
                    seen.live.clear();
                }
            }
            _ => {}
        }
    }

    /// After a new login and the join of `title`: the request for what was missed. By
    /// id when no live message came after the last history message seen; otherwise the
    /// last [`CATCH_UP`], trimmed when it comes to what follows the last live message
    /// seen.
    pub(crate) fn request_for<'a>(&self, title: &'a str, buf: &'a mut String) -> Request<'a> {
        let seen = self.channels.get(title);
        match seen {
            Some(Seen {
                last_id: Some(id),
                live,
            }) if live.is_empty() => {
                *buf = id.to_string();
                Request::History {
                    title,
                    how: "since",
                    number: buf,
                }
            }
            _ => {
                *buf = CATCH_UP.to_string();
                Request::History {
                    title,
                    how: "last",
                    number: buf,
                }
            }
        }
    }

    /// Says that the answer to the catch-up request for `title` is coming.
    pub(crate) fn expect_answer(&mut self, title: &str) {
        let seen = self
            .channels
            .get(title)
            .map(|s| s.live.clone())
            .unwrap_or_default();
        self.pending.insert(
            title.to_owned(),
            Pending {
                seen,
                ..Pending::default()
            },
        );
    }

    /// Forgets the catch-up answers still awaited (the connection was lost again).
    pub(crate) fn cancel_pending(&mut self) {
        self.pending.clear();
    }

    /// Notes `event`, and holds the messages of a catch-up answer until its end, when the
    /// ones not seen before are released, marked as history; those whose sender
    /// `hidden` says the user ignores are left out.
    pub(crate) fn intercept(
        &mut self,
        event: &Event<'_>,
        hidden: &dyn Fn(&str) -> bool,
    ) -> Intercept {
        match event {
            Event::HistoryMsg { title, .. } if self.pending.contains_key(*title) => {
                if let (Some(p), Some(held)) = (self.pending.get_mut(*title), Held::of(event)) {
                    // A server sends at most one batch; anything beyond is not kept.
                    if p.held.len() < CATCH_UP as usize {
                        p.held.push(held);
                    }
                }
                Intercept::Hold
            }
            Event::HistoryEnd { title, last, more } if self.pending.contains_key(*title) => {
                let Pending {
                    held,
                    seen,
                    mut live_since,
                } = self.pending.remove(*title).unwrap_or_default();
                let pairs: Vec<(&str, &str)> = held
                    .iter()
                    .map(|h| (h.sender.as_str(), h.text.as_str()))
                    .collect();
                let skip = place_after(&seen, &pairs);
                let mut lines = Vec::new();
                let mut missed = 0;
                for h in &held[skip..] {
                    // Shown live already, after the rejoin and before this answer.
                    if let Some(i) = live_since
                        .iter()
                        .position(|(s, t)| *s == h.sender && *t == h.text)
                    {
                        live_since.remove(i);
                        continue;
                    }
                    missed += 1;
                    if hidden(&h.sender) {
                        continue;
                    }
                    lines.extend(render(&Event::HistoryMsg {
                        title,
                        id: h.id,
                        ms: h.ms,
                        sender: &h.sender,
                        text: &h.text,
                    }));
                }
                let t = sanitize(title);
                lines.push(match (missed, more) {
                    (0, _) => format!("\t-- nothing missed in {t} --"),
                    (n, 0) => format!("\t-- {n} missed in {t} --"),
                    (n, m) => {
                        format!("\t-- {n} missed in {t}, {m} more: /history {t} since {last} --")
                    }
                });
                if let (Some(seen), Some(last)) = (self.channels.get_mut(*title), held.last()) {
                    seen.last_id = Some(last.id);
                    seen.live.clear();
                }
                Intercept::Release(lines)
            }
            _ => {
                self.note(event);
                Intercept::Pass
            }
        }
    }
}

/// Where the live messages `seen` (oldest first) end in `answer`: the number of its
/// leading messages they cover, 0 if none matches. Live messages carry no id (part 1),
/// so the place is found by content: the end where the longest run of the last messages
/// seen matches, the latest of equals, so that a line said again while the client was
/// away (an "ok") does not hide what came before it.
fn place_after(seen: &[(String, String)], answer: &[(&str, &str)]) -> usize {
    let mut best = (0, 0);
    for end in 0..answer.len() {
        let run = answer[..=end]
            .iter()
            .rev()
            .zip(seen.iter().rev())
            .take_while(|(a, s)| a.0 == s.0 && a.1 == s.1)
            .count();
        if run > 0 && run >= best.0 {
            best = (run, end + 1);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ChannelInfo;

    impl CatchUp {
        /// The channels the client was in.
        fn channels(&self) -> Vec<String> {
            self.channels.keys().cloned().collect()
        }

        /// Of a catch-up answer for `title` (sender, text in order), how many leading
        /// messages were seen already: those up to the last live message remembered.
        fn already_seen(&self, title: &str, answer: &[(String, String)]) -> usize {
            let Some(seen) = self.channels.get(title) else {
                return 0;
            };
            let pairs: Vec<(&str, &str)> = answer
                .iter()
                .map(|(s, t)| (s.as_str(), t.as_str()))
                .collect();
            place_after(&seen.live, &pairs)
        }
    }

    #[test]
    fn history_and_kept_messages_are_marked_with_their_time() {
        let h = render(&Event::HistoryMsg {
            title: "Den",
            id: 7,
            ms: 1_700_000_000_000,
            sender: "bob",
            text: "hi",
        })
        .unwrap();
        assert_eq!(h, "\t[history 2023-11-14 22:13:20] bob [Den]: hi");
        let k = render(&Event::StoredPrivate {
            ms: 0,
            sender: "bob",
            text: "psst",
        })
        .unwrap();
        assert_eq!(k, "\t[kept 1970-01-01 00:00:00] bob [**private**]: psst");
    }

    #[test]
    fn notices_read_as_sentences() {
        let n = |action, args| {
            render(&Event::ChanNotice {
                title: "Den",
                actor: "ann",
                action,
                args,
            })
            .unwrap()
        };
        assert_eq!(
            n("kick", "bob spam spam"),
            "\t<ann removed bob from Den: spam spam>"
        );
        assert_eq!(
            n("ban", "spam* 60 ads"),
            "\t<ann banned spam* from Den for 60 s: ads>"
        );
        assert_eq!(
            n("ban", "bob 0"),
            "\t<ann banned bob from Den until lifted>"
        );
        assert_eq!(n("mode", "+m"), "\t<ann set mode +m on Den>");
        assert!(render(&Event::HelloAck {
            history: 1,
            now_ms: 2
        })
        .is_none());
    }

    #[test]
    fn catch_up_asks_by_id_or_finds_its_place() {
        let mut c = CatchUp::default();
        let info = ChannelInfo {
            title: "Den",
            count: 1,
            description: "",
        };
        c.note(&Event::JoinAck(info));
        c.note(&Event::HistoryMsg {
            title: "Den",
            id: 42,
            ms: 0,
            sender: "a",
            text: "x",
        });
        let mut buf = String::new();
        assert_eq!(
            c.request_for("Den", &mut buf),
            Request::History {
                title: "Den",
                how: "since",
                number: "42"
            }
        );
        c.note(&Event::PublicMsg {
            title: "Den",
            sender: "bob",
            text: "two",
        });
        assert_eq!(
            c.request_for("Den", &mut buf),
            Request::History {
                title: "Den",
                how: "last",
                number: "50"
            }
        );
        let answer: Vec<(String, String)> = [("a", "x"), ("bob", "two"), ("cid", "three")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(c.already_seen("Den", &answer), 2);
        assert_eq!(c.channels(), ["Den"]);
        c.note(&Event::PartAck(info));
        assert!(c.channels().is_empty());
    }

    #[test]
    fn a_line_said_again_while_away_does_not_hide_what_came_before_it() {
        let seen: Vec<(String, String)> = [("bob", "lunch?"), ("cid", "ok")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let answer = [
            ("bob", "lunch?"),
            ("cid", "ok"),
            ("bob", "noon then"),
            ("cid", "ok"),
        ];
        assert_eq!(place_after(&seen, &answer), 2);
        assert_eq!(place_after(&seen, &answer[2..]), 2, "only the repeat left");
        assert_eq!(place_after(&seen, &[("dan", "new")]), 0);
        assert_eq!(place_after(&[], &answer), 0);
    }

    #[test]
    fn a_catch_up_answer_shows_only_what_was_missed() {
        let mut c = CatchUp::default();
        c.note(&Event::JoinAck(ChannelInfo {
            title: "Den",
            count: 1,
            description: "",
        }));
        // Of channels not joined, nothing is kept.
        c.note(&Event::PublicMsg {
            title: "Elsewhere",
            sender: "bob",
            text: "x",
        });
        assert_eq!(c.channels(), ["Den"]);
        for text in ["one", "two"] {
            c.note(&Event::PublicMsg {
                title: "Den",
                sender: "bob",
                text,
            });
        }
        c.expect_answer("Den");
        for (id, text) in [(1, "one"), (2, "two"), (3, "three")] {
            let e = Event::HistoryMsg {
                title: "Den",
                id,
                ms: 0,
                sender: "bob",
                text,
            };
            assert_eq!(c.intercept(&e, &|_| false), Intercept::Hold);
        }
        let end = Event::HistoryEnd {
            title: "Den",
            last: 3,
            more: 0,
        };
        assert_eq!(
            c.intercept(&end, &|_| false),
            Intercept::Release(vec![
                "\t[history 1970-01-01 00:00:00] bob [Den]: three".into(),
                "\t-- 1 missed in Den --".into()
            ])
        );
        // Next time, by id.
        let mut buf = String::new();
        assert_eq!(
            c.request_for("Den", &mut buf).to_bytes(),
            Request::History {
                title: "Den",
                how: "since",
                number: "3"
            }
            .to_bytes()
        );
        assert_eq!(c.intercept(&end, &|_| false), Intercept::Pass);
    }
}
