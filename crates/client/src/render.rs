//! Turns server events into the lines the client shows, exactly as the classic client
//! printed them, with every piece of network text defused by [`sanitize`] first.

use crate::community;
use crate::text::sanitize;
use proto::{ChannelInfo, Event};

/// The line shown for one server event, starting with a tab and without a line end.
pub(crate) fn render(event: &Event<'_>) -> String {
    if !shown(event) {
        // Steps of a password exchange, of path validation and of the delivery
        // extensions, and the answer to the part-5 hello: the client consumes them.
        return String::new();
    }
    let s = sanitize;
    match event {
        Event::Error { message } => format!("\t** ERROR: {} **", s(message)),
        Event::LoginAck { nick } => format!("\tLog in successful. Welcome {}.", s(nick)),
        Event::JoinAck(info) => format!(
            "\tWelcome to the {} Channel ({} users)",
            s(info.title),
            info.count
        ),
        Event::PartAck(info) => format!("\tYou have left the {} Channel", s(info.title)),
        Event::ChannelItem(info) => channel_item(info),
        Event::PublicMsg {
            title,
            sender,
            text,
        } => format!("\t{} [{}]: {}", s(sender), s(title), s(text)),
        Event::PrivateMsg { sender, text } => {
            format!("\t{} [**private**]: {}", s(sender), s(text))
        }
        Event::UserJoins { title, nick } => format!("\t<{} has entered {}>", s(nick), s(title)),
        Event::UserParts { title, nick } => format!("\t<{} has left {}>", s(nick), s(title)),
        Event::UserItem {
            nick,
            seconds,
            channels,
        } => format!(
            "\t{:<15} (on {}) Channels: {}",
            s(nick),
            hms(*seconds),
            s(channels)
        ),
        Event::UserOnline { nick } => format!("\t<{} is online>", s(nick)),
        Event::UserOffline { nick } => format!("\t<{} is offline>", s(nick)),
        Event::AccountAck { what, nick } => match *what {
            "registered" => format!("\tNickname {} is registered.", s(nick)),
            "changed" => format!("\tPassword changed for {}.", s(nick)),
            "unregistered" => format!("\tNickname {} is no longer registered.", s(nick)),
            other => format!("\tAccount {}: {}", s(nick), s(other)),
        },
        // Part 5: channels, moderation, history, operators.
        part5 => community::render(part5).unwrap_or_default(),
    }
}

/// Whether an event is shown to the user (the steps of a password exchange, the delivery
/// extensions' bookkeeping and the answer to the part-5 hello are not).
pub(crate) fn shown(event: &Event<'_>) -> bool {
    !matches!(
        event,
        Event::RegisterResp { .. }
            | Event::AuthChallenge { .. }
            | Event::AuthRetry { .. }
            | Event::PathChallenge { .. }
            | Event::CapsAck { .. }
            | Event::Pong { .. }
            | Event::McastGroup { .. }
            | Event::McastProbe { .. }
            | Event::ServerHere { .. }
            | Event::HelloAck { .. }
    )
}

/// `[TITLE]` padded to 20 columns, the description padded to 40, then the member count.
fn channel_item(info: &ChannelInfo<'_>) -> String {
    let title = format!("[{}]", sanitize(info.title));
    format!(
        "\t{:<20}{:<40}{} users",
        title,
        sanitize(info.description),
        info.count
    )
}

/// A duration in whole seconds as `HH:MM:SS`; hours grow past two digits when they must.
pub(crate) fn hms(seconds: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::code;

    fn info<'a>(title: &'a str, count: u32, description: &'a str) -> ChannelInfo<'a> {
        ChannelInfo {
            title,
            count,
            description,
        }
    }

    #[test]
    fn login_and_channel_answers() {
        assert_eq!(
            render(&Event::LoginAck { nick: "ann" }),
            "\tLog in successful. Welcome ann."
        );
        assert_eq!(
            render(&Event::JoinAck(info("Pets", 2, "For pets"))),
            "\tWelcome to the Pets Channel (2 users)"
        );
        assert_eq!(
            render(&Event::PartAck(info("Pets", 1, "For pets"))),
            "\tYou have left the Pets Channel"
        );
    }

    #[test]
    fn channel_item_pads_title_to_20_and_description_to_40() {
        let line = render(&Event::ChannelItem(info(
            "Weather",
            3,
            "Talk about the weather",
        )));
        assert_eq!(
            line,
            "\t[Weather]           Talk about the weather                  3 users"
        );
        assert_eq!(line.len(), 1 + 20 + 40 + "3 users".len());
    }

    #[test]
    fn channel_item_with_long_fields_is_not_cut() {
        let title = "T".repeat(25);
        let line = render(&Event::ChannelItem(info(&title, 0, "d")));
        assert_eq!(line, format!("\t[{title}]d{}0 users", " ".repeat(39)));
    }

    #[test]
    fn messages_and_notices() {
        for (code, payload, line) in [
            (
                code::PUBLIC_MSG,
                "Pets bob hi  there ",
                "\tbob [Pets]: hi  there ",
            ),
            (code::PRIVATE_MSG, "bob psst", "\tbob [**private**]: psst"),
            (code::USER_JOINS, "Pets bob", "\t<bob has entered Pets>"),
            (code::USER_PARTS, "Pets bob", "\t<bob has left Pets>"),
            (
                code::ERROR,
                "no current channel",
                "\t** ERROR: no current channel **",
            ),
            (code::USER_ONLINE, "bob", "\t<bob is online>"),
            (code::USER_OFFLINE, "bob", "\t<bob is offline>"),
        ] {
            let mut datagram = Vec::new();
            proto::encode_raw(code, payload, &mut datagram);
            assert_eq!(render(&Event::decode(&datagram).unwrap()), line);
        }
    }

    #[test]
    fn user_item_pads_nick_to_15_and_shows_time_online() {
        assert_eq!(
            render(&Event::UserItem {
                nick: "ann",
                seconds: 3723,
                channels: "Pets Weather"
            }),
            "\tann             (on 01:02:03) Channels: Pets Weather"
        );
        assert_eq!(
            render(&Event::UserItem {
                nick: "bob",
                seconds: 0,
                channels: ""
            }),
            "\tbob             (on 00:00:00) Channels: "
        );
    }

    #[test]
    fn hms_carries_and_grows_past_99_hours() {
        assert_eq!(hms(59), "00:00:59");
        assert_eq!(hms(60), "00:01:00");
        assert_eq!(hms(86_399), "23:59:59");
        assert_eq!(hms(360_000), "100:00:00");
    }

    #[test]
    fn every_field_of_an_event_is_sanitized() {
        let line = render(&Event::PublicMsg {
            title: "P\u{1b}",
            sender: "b\u{1b}",
            text: "\u{1b}[31mred",
        });
        assert_eq!(line, "\tb^[ [P^[]: ^[[31mred");
        assert!(!line.contains('\u{1b}'));
    }
}
