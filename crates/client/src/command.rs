//! Parses a line the user typed into a typed [`Command`], and says what each command
//! sends. Pure functions, so every rule is unit-tested without a terminal or a socket.

use proto::Request;

/// What one input line asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command<'a> {
    /// A blank line: nothing to do.
    Nothing,
    /// A public message to the current channel.
    Say(&'a str),
    /// `/private NICK TEXT` (or `/msg NICK TEXT`).
    Private {
        /// The recipient.
        nick: &'a str,
        /// The message.
        text: &'a str,
    },
    /// `/channels`: list the channels.
    Channels,
    /// `/join TITLE`.
    Join(&'a str),
    /// `/part [TITLE]`; empty means the current channel.
    Part(&'a str),
    /// `/users`: list the members of the current channel.
    Users,
    /// `/who [PREFIX]`: logged-in users whose nickname starts with the prefix.
    Who(&'a str),
    /// `/whois NICK`.
    Whois(&'a str),
    /// `/watch NICK...`: nicknames to tell about when they log in or off.
    Watch(&'a str),
    /// `/unwatch NICK...`.
    Unwatch(&'a str),
    /// `/login [NICK]`: log in again, under `NICK` or a nickname asked for.
    Login(Option<&'a str>),
    /// `/nick NEW`: log in under another nickname and rejoin the same channels.
    Nick(&'a str),
    /// `/register`: protect the current nickname with a password.
    Register,
    /// `/passwd`: change the password (the current one is asked first).
    Passwd,
    /// `/unregister`: delete the account of the current nickname.
    Unregister,
    /// `/ignore [NICK]`: hide NICK's messages; without NICK, list who is ignored.
    Ignore(&'a str),
    /// `/unignore NICK`.
    Unignore(&'a str),
    /// `/status`: the session, and how each channel's traffic arrives (unicast or
    /// multicast).
    Status,
    /// `/reconnect`: log in again under the same nickname, rejoin the channels and show
    /// what was missed meanwhile.
    Reconnect,
    /// `/quit`.
    Quit,
    /// `/window N`: show buffer N (full-screen client).
    Window(&'a str),
    /// `/search TEXT`: find TEXT in the buffer's scrollback (full-screen client).
    Search(&'a str),
    /// `/help`.
    Help,
    /// A part-5 command (channels, moderation, history, operators): the request it sends.
    Community(Part5<'a>),
    /// A command with a missing argument; holds the usage to show.
    Usage(&'static str),
    /// A command nobody knows; holds its name as typed, slash included.
    Unknown(&'a str),
}

/// The text `/help` shows, one line each; short enough to fit 80 columns after a tab.
pub const HELP: &[&str] = &[
    "Commands:",
    "  /channels            list the channels",
    "  /join TITLE          join a channel and make it current",
    "  /part [TITLE]        leave a channel (the current one without TITLE)",
    "  /users               list the users of the current channel",
    "  /private NICK TEXT   send TEXT to NICK alone (/msg too)",
    "  /who [PREFIX]        list the users whose nickname starts with PREFIX",
    "  /whois NICK          show one user",
    "  /watch NICK...       tell me when these users log in or off",
    "  /unwatch NICK...     stop telling me about them",
    "  /login [NICK]        log in again under another nickname",
    "  /nick NEW            take another nickname, staying in the channels",
    "  /ignore [NICK]       hide NICK's messages (list who is ignored)",
    "  /unignore NICK       show them again",
    "  /window N            show buffer N (full screen; Alt-N, Ctrl-N/P too)",
    "  /search TEXT         find TEXT in this buffer (full screen)",
    "  /register            protect this nickname with a password",
    "  /passwd              change the password (asks the current one)",
    "  /unregister          delete the account (asks for the nickname)",
    "  /status              how each channel's messages arrive (multicast?)",
    "  /reconnect           log in again now and show what was missed",
    "  /quit                log off and leave (Ctrl-D and Ctrl-C too)",
    "  /help                this list",
    "Channels of your own (you are their operator):",
    "  /create TITLE [TEXT] create a channel (kept if you logged in with a",
    "                       password, else gone when its last member leaves)",
    "  /drop TITLE          give up a registered channel",
    "  /topic TITLE TEXT    set the topic (description)",
    "  /kick TITLE NICK [WHY]        remove someone",
    "  /ban TITLE MASK [SECS] [WHY]  ban a nickname pattern (* ?) or",
    "                       account:NAME, for SECS or until unbanned",
    "  /op TITLE NICK, /deop TITLE NICK      make or unmake an operator",
    "  /voice TITLE NICK, /devoice TITLE NICK  who may speak when moderated",
    "  /mode TITLE [+i|-i|+m|-m|+t|-t|+l N|-l]  change or show the modes",
    "  /invite TITLE NICK   let NICK into an invite-only channel",
    "  /history TITLE [N | since ID]  show recent messages",
    "Messages kept for you while away (log in with your password):",
    "  /refuse [MASK]       keep none from NICK, a pattern (* ?) or",
    "                       account:NAME (alone: list who is refused)",
    "  /accept MASK         stop refusing MASK",
    "Server operators:",
    "  /kill NICK [WHY]     disconnect a user",
    "  /addrban ADDR[/BITS] [SECS] [WHY], /addrunban ADDR[/BITS]",
    "  /wall TEXT           a notice to everyone",
    "  /stats               the server's status",
    "Other lines are said in the current channel (// says a line starting",
    "with /). Tab completes commands, nicknames and channels; Up and Down",
    "recall lines.",
];

/// A part-5 command, parsed: it maps to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Part5<'a>(Request<'a>);

impl<'a> Part5<'a> {
    /// The request it sends.
    pub(crate) fn request(&self) -> Request<'a> {
        self.0
    }
}

/// The arguments of a command, split the ways the commands read them.
struct Args<'a> {
    /// All of them (trimmed).
    all: &'a str,
    /// The first word, and the rest after it.
    first: &'a str,
    rest: &'a str,
    /// The second word, and the rest after it.
    second: &'a str,
    tail: &'a str,
    /// The third word, and the rest after it.
    third: &'a str,
    last: &'a str,
}

impl<'a> Args<'a> {
    fn new(all: &'a str) -> Self {
        let (first, rest) = word(all);
        let (second, tail) = word(rest);
        let (third, last) = word(tail);
        Args {
            all,
            first,
            rest,
            second,
            tail,
            third,
            last,
        }
    }
}

/// Splits off the first word; the rest is trimmed.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim();
    match s.split_once(char::is_whitespace) {
        Some((w, rest)) => (w, rest.trim()),
        None => (s, ""),
    }
}

/// What a command can't do without; missing, its usage is shown instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Nothing.
    No,
    /// The first word.
    First,
    /// The first two words.
    Second,
    /// Something after the first word.
    Rest,
    /// Some text.
    Text,
}

/// What a command's arguments mean.
type Parse = for<'a> fn(&Args<'a>) -> Command<'a>;

/// `seconds` as a ban's length when it is a number (then `reason` follows), else no
/// length (`0`: until lifted) and `otherwise` is the reason.
fn length<'a>(seconds: &'a str, reason: &'a str, otherwise: &'a str) -> (&'a str, &'a str) {
    if !seconds.is_empty() && seconds.bytes().all(|b| b.is_ascii_digit()) {
        (seconds, reason)
    } else {
        ("0", otherwise)
    }
}

fn part5(request: Request<'_>) -> Command<'_> {
    Command::Community(Part5(request))
}

/// `/op` and its kin: a member mode given or taken.
fn member_mode<'a>(a: &Args<'a>, change: &'static str) -> Command<'a> {
    part5(Request::ChanMode {
        title: a.first,
        change,
        arg: a.second,
    })
}

const OP_USAGE: &str = "/op TITLE NICK (and /deop, /voice, /devoice)";
const PRIVATE_USAGE: &str = "/private NICK TEXT";

/// Every command, by name (in order, for completion): its usage, what it needs and what
/// it means. `/help` ([`HELP`]) says the same in words.
#[rustfmt::skip]
const COMMANDS: &[(&str, &str, Needs, Parse)] = &[
    ("/accept", "/accept MASK", Needs::First,
        |a| part5(Request::MailAccept { mask: a.first })),
    ("/addrban", "/addrban ADDRESS[/BITS] [SECONDS] [REASON]", Needs::First, |a| {
        let (seconds, reason) = length(a.second, a.tail, a.rest);
        part5(Request::OperBan { seconds, net: a.first, reason })
    }),
    ("/addrunban", "/addrunban ADDRESS[/BITS]", Needs::First,
        |a| part5(Request::OperUnban { net: a.first })),
    ("/ban", "/ban TITLE MASK [SECONDS] [REASON]", Needs::Second, |a| {
        let (seconds, reason) = length(a.third, a.last, a.tail);
        part5(Request::ChanBan { title: a.first, seconds, mask: a.second, reason })
    }),
    ("/channels", "", Needs::No, |_| Command::Channels),
    ("/create", "/create TITLE [DESCRIPTION]", Needs::First,
        |a| part5(Request::ChanCreate { title: a.first, description: a.rest })),
    ("/deop", OP_USAGE, Needs::Second, |a| member_mode(a, "-o")),
    ("/devoice", OP_USAGE, Needs::Second, |a| member_mode(a, "-v")),
    ("/drop", "/drop TITLE", Needs::First, |a| part5(Request::ChanDrop { title: a.first })),
    ("/help", "", Needs::No, |_| Command::Help),
    ("/history", "/history TITLE [COUNT | since ID]", Needs::First, |a| {
        part5(if a.second.eq_ignore_ascii_case("since") && !a.tail.is_empty() {
            Request::History { title: a.first, how: "since", number: a.third }
        } else {
            let number = if a.second.is_empty() { "20" } else { a.second };
            Request::History { title: a.first, how: "last", number }
        })
    }),
    ("/ignore", "", Needs::No, |a| Command::Ignore(a.first)),
    ("/invite", "/invite TITLE NICK", Needs::Second,
        |a| part5(Request::ChanInvite { title: a.first, nick: a.second })),
    ("/join", "/join TITLE", Needs::First, |a| Command::Join(a.first)),
    ("/kick", "/kick TITLE NICK [REASON]", Needs::Second,
        |a| part5(Request::ChanKick { title: a.first, nick: a.second, reason: a.tail })),
    ("/kill", "/kill NICK [REASON]", Needs::First,
        |a| part5(Request::OperKill { nick: a.first, reason: a.rest })),
    ("/login", "", Needs::No, |a| Command::Login((!a.first.is_empty()).then_some(a.first))),
    ("/mode", "/mode TITLE [+i|-i|+m|-m|+t|-t|+l COUNT|-l]", Needs::First,
        |a| part5(Request::ChanMode { title: a.first, change: a.second, arg: a.third })),
    ("/msg", PRIVATE_USAGE, Needs::Rest, |a| Command::Private { nick: a.first, text: a.rest }),
    ("/nick", "/nick NEW", Needs::First, |a| Command::Nick(a.first)),
    ("/op", OP_USAGE, Needs::Second, |a| member_mode(a, "+o")),
    ("/part", "", Needs::No, |a| Command::Part(a.first)),
    ("/passwd", "", Needs::No, |_| Command::Passwd),
    ("/private", PRIVATE_USAGE, Needs::Rest,
        |a| Command::Private { nick: a.first, text: a.rest }),
    ("/quit", "", Needs::No, |_| Command::Quit),
    ("/reconnect", "", Needs::No, |_| Command::Reconnect),
    ("/refuse", "", Needs::No, |a| part5(Request::MailRefuse { mask: a.first })),
    ("/register", "", Needs::No, |_| Command::Register),
    ("/search", "/search TEXT", Needs::Text, |a| Command::Search(a.all)),
    ("/stats", "", Needs::No, |_| part5(Request::OperStatus)),
    ("/status", "", Needs::No, |_| Command::Status),
    ("/topic", "/topic TITLE TEXT", Needs::First,
        |a| part5(Request::ChanTopic { title: a.first, text: a.rest })),
    ("/unban", "/unban TITLE MASK", Needs::Second,
        |a| part5(Request::ChanUnban { title: a.first, mask: a.second })),
    ("/unignore", "/unignore NICK", Needs::First, |a| Command::Unignore(a.first)),
    ("/unregister", "", Needs::No, |_| Command::Unregister),
    ("/unwatch", "/unwatch NICK...", Needs::Text, |a| Command::Unwatch(a.all)),
    ("/users", "", Needs::No, |_| Command::Users),
    ("/voice", OP_USAGE, Needs::Second, |a| member_mode(a, "+v")),
    ("/wall", "/wall TEXT", Needs::Text, |a| part5(Request::OperNotice { text: a.all })),
    ("/watch", "/watch NICK...", Needs::Text, |a| Command::Watch(a.all)),
    ("/who", "", Needs::No, |a| Command::Who(a.first)),
    ("/whois", "/whois NICK", Needs::First, |a| Command::Whois(a.first)),
    ("/window", "/window N", Needs::First, |a| Command::Window(a.first)),
];

/// The command names that complete `typed` (the start of a line, cursor at its end):
/// none unless it is a slash and the start of a name, with no space yet.
pub(crate) fn complete(typed: &str) -> Vec<&'static str> {
    if !typed.starts_with('/') || typed.contains(char::is_whitespace) {
        return Vec::new();
    }
    COMMANDS
        .iter()
        .map(|c| c.0)
        .filter(|name| name.len() >= typed.len() && name[..typed.len()].eq_ignore_ascii_case(typed))
        .collect()
}

/// Parses one input line (without its line end).
///
/// Command names are matched without regard to case. Arguments are separated by runs of
/// spaces; the text of `/private` keeps its inner spacing. A line starting with `//` is
/// a public message starting with one `/`.
pub(crate) fn parse(line: &str) -> Command<'_> {
    if line.trim().is_empty() {
        return Command::Nothing;
    }
    let Some(rest) = line.strip_prefix('/') else {
        return Command::Say(line);
    };
    if rest.starts_with('/') {
        return Command::Say(rest);
    }
    let (name, args) = match rest.split_once(char::is_whitespace) {
        Some((name, args)) => (name, args.trim()),
        None => (rest, ""),
    };
    let Some(&(_, usage, needs, parse)) = COMMANDS
        .iter()
        .find(|c| c.0[1..].eq_ignore_ascii_case(name))
    else {
        return Command::Unknown(&line[..1 + name.len()]);
    };
    let a = Args::new(args);
    let missing = match needs {
        Needs::No => false,
        Needs::First => a.first.is_empty(),
        Needs::Second => a.second.is_empty(),
        Needs::Rest => a.rest.is_empty(),
        Needs::Text => a.all.is_empty(),
    };
    if missing {
        Command::Usage(usage)
    } else {
        parse(&a)
    }
}

impl<'a> Command<'a> {
    /// The request this command sends, if it sends one by itself. `/login`, `/quit`,
    /// `/help` and the local answers need the session and return `None`.
    ///
    /// Watch lists are sent with their words joined by single spaces, as the protocol
    /// separates fields; `buf` holds that text.
    pub(crate) fn request<'b>(&self, buf: &'b mut String) -> Option<Request<'b>>
    where
        'a: 'b,
    {
        Some(match *self {
            Command::Say(text) => Request::SendPublic { text },
            Command::Channels => Request::ListChannels,
            Command::Join(title) => Request::Join { title },
            Command::Part(title) => Request::Part { title },
            Command::Users => Request::ListUsers,
            Command::Private { nick, text } => Request::SendPrivate {
                recipient: nick,
                text,
            },
            Command::Who(prefix) => Request::Who { prefix },
            Command::Whois(nick) => Request::Whois { nick },
            Command::Watch(nicks) | Command::Unwatch(nicks) => {
                *buf = nicks.split_whitespace().collect::<Vec<_>>().join(" ");
                let nicks = buf.as_str();
                if matches!(self, Command::Watch(_)) {
                    Request::Watch { nicks }
                } else {
                    Request::Unwatch { nicks }
                }
            }
            Command::Unregister => Request::Unregister,
            Command::Community(p) => p.request(),
            Command::Nothing
            | Command::Reconnect
            | Command::Login(_)
            | Command::Register
            | Command::Passwd
            | Command::Nick(_)
            | Command::Window(_)
            | Command::Search(_)
            | Command::Ignore(_)
            | Command::Unignore(_)
            | Command::Quit
            | Command::Help
            | Command::Status
            | Command::Usage(_)
            | Command::Unknown(_) => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_are_public_messages() {
        assert_eq!(parse("hello  world "), Command::Say("hello  world "));
        assert_eq!(parse(" /not a command"), Command::Say(" /not a command"));
        assert_eq!(parse("//join is a word"), Command::Say("/join is a word"));
        assert_eq!(parse(""), Command::Nothing);
        assert_eq!(parse("   "), Command::Nothing);
    }

    #[test]
    fn classic_commands() {
        assert_eq!(parse("/channels"), Command::Channels);
        assert_eq!(parse("/join Pets"), Command::Join("Pets"));
        assert_eq!(parse("/join   Pets  extra"), Command::Join("Pets"));
        assert_eq!(parse("/part"), Command::Part(""));
        assert_eq!(parse("/part Pets"), Command::Part("Pets"));
        assert_eq!(parse("/users"), Command::Users);
        assert_eq!(
            parse("/private bob hi  there"),
            Command::Private {
                nick: "bob",
                text: "hi  there"
            }
        );
        assert_eq!(parse("/login"), Command::Login(None));
        assert_eq!(parse("/login carl"), Command::Login(Some("carl")));
        assert_eq!(parse("/quit"), Command::Quit);
    }

    #[test]
    fn extension_commands() {
        assert_eq!(parse("/who"), Command::Who(""));
        assert_eq!(parse("/who an"), Command::Who("an"));
        assert_eq!(parse("/whois bob"), Command::Whois("bob"));
        assert_eq!(parse("/watch bob  carl"), Command::Watch("bob  carl"));
        assert_eq!(parse("/unwatch bob"), Command::Unwatch("bob"));
        assert_eq!(parse("/help"), Command::Help);
        assert_eq!(parse("/status"), Command::Status);
        assert_eq!(
            parse("/msg bob hi"),
            Command::Private {
                nick: "bob",
                text: "hi"
            }
        );
        assert_eq!(parse("/nick carl"), Command::Nick("carl"));
        assert_eq!(parse("/nick"), Command::Usage("/nick NEW"));
        assert_eq!(parse("/window 2"), Command::Window("2"));
        assert_eq!(parse("/search two words"), Command::Search("two words"));
        assert_eq!(parse("/ignore"), Command::Ignore(""));
        assert_eq!(parse("/ignore bob"), Command::Ignore("bob"));
        assert_eq!(parse("/unignore bob"), Command::Unignore("bob"));
        assert_eq!(parse("/passwd"), Command::Passwd);
        assert_eq!(parse("/register"), Command::Register);
    }

    #[test]
    fn names_ignore_case() {
        assert_eq!(parse("/JOIN Pets"), Command::Join("Pets"));
        assert_eq!(parse("/Quit"), Command::Quit);
    }

    #[test]
    fn missing_arguments_give_usage() {
        assert_eq!(parse("/join"), Command::Usage("/join TITLE"));
        assert_eq!(parse("/join   "), Command::Usage("/join TITLE"));
        assert_eq!(parse("/private"), Command::Usage("/private NICK TEXT"));
        assert_eq!(parse("/private bob"), Command::Usage("/private NICK TEXT"));
        assert_eq!(
            parse("/private bob   "),
            Command::Usage("/private NICK TEXT")
        );
        assert_eq!(parse("/whois"), Command::Usage("/whois NICK"));
        assert_eq!(parse("/watch"), Command::Usage("/watch NICK..."));
        assert_eq!(parse("/unwatch "), Command::Usage("/unwatch NICK..."));
    }

    #[test]
    fn unknown_commands_keep_their_name_as_typed() {
        assert_eq!(parse("/frob x y"), Command::Unknown("/frob"));
        assert_eq!(parse("/Frob"), Command::Unknown("/Frob"));
        assert_eq!(parse("/"), Command::Unknown("/"));
    }

    #[test]
    fn completion_offers_matching_command_names() {
        assert_eq!(
            complete("/w"),
            ["/wall", "/watch", "/who", "/whois", "/window"]
        );
        assert_eq!(complete("/WHO"), ["/who", "/whois"]);
        assert_eq!(complete("/m"), ["/mode", "/msg"]);
        assert_eq!(complete("/j"), ["/join"]);
        assert_eq!(complete("/").len(), COMMANDS.len());
        assert!(complete("/join P").is_empty());
        assert!(complete("hello").is_empty());
        assert!(complete("/zz").is_empty());
    }

    #[test]
    fn every_name_parses_as_a_command() {
        for (name, ..) in COMMANDS {
            assert!(
                !matches!(parse(name), Command::Unknown(_) | Command::Say(_)),
                "{name}"
            );
        }
    }

    #[test]
    fn part5_commands_map_to_their_requests() {
        let r = |line| match parse(line) {
            Command::Community(p) => p.request(),
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(
            r("/create Den a cozy place"),
            Request::ChanCreate {
                title: "Den",
                description: "a cozy place"
            }
        );
        assert_eq!(
            r("/kick Den bob  too loud"),
            Request::ChanKick {
                title: "Den",
                nick: "bob",
                reason: "too loud"
            }
        );
        assert_eq!(
            r("/ban Den spam* 3600 ads"),
            Request::ChanBan {
                title: "Den",
                seconds: "3600",
                mask: "spam*",
                reason: "ads"
            }
        );
        assert_eq!(
            r("/ban Den bob rude words"),
            Request::ChanBan {
                title: "Den",
                seconds: "0",
                mask: "bob",
                reason: "rude words"
            }
        );
        assert_eq!(
            r("/deop Den bob"),
            Request::ChanMode {
                title: "Den",
                change: "-o",
                arg: "bob"
            }
        );
        assert_eq!(
            r("/mode Den +l 5"),
            Request::ChanMode {
                title: "Den",
                change: "+l",
                arg: "5"
            }
        );
        assert_eq!(
            r("/mode Den"),
            Request::ChanMode {
                title: "Den",
                change: "",
                arg: ""
            }
        );
        assert_eq!(
            r("/history Den"),
            Request::History {
                title: "Den",
                how: "last",
                number: "20"
            }
        );
        assert_eq!(
            r("/history Den since 42"),
            Request::History {
                title: "Den",
                how: "since",
                number: "42"
            }
        );
        assert_eq!(
            r("/addrban 10.0.0.0/8 60 abuse"),
            Request::OperBan {
                seconds: "60",
                net: "10.0.0.0/8",
                reason: "abuse"
            }
        );
        assert_eq!(r("/wall hi all"), Request::OperNotice { text: "hi all" });
        assert_eq!(r("/stats"), Request::OperStatus);
        assert_eq!(r("/refuse spam*"), Request::MailRefuse { mask: "spam*" });
        assert_eq!(r("/refuse"), Request::MailRefuse { mask: "" });
        assert_eq!(
            r("/ACCEPT account:bob"),
            Request::MailAccept {
                mask: "account:bob"
            }
        );
        assert_eq!(parse("/accept"), Command::Usage("/accept MASK"));
        assert_eq!(
            parse("/kick Den"),
            Command::Usage("/kick TITLE NICK [REASON]")
        );
        assert_eq!(
            parse("/create"),
            Command::Usage("/create TITLE [DESCRIPTION]")
        );
        assert_eq!(parse("/reconnect"), Command::Reconnect);
    }

    #[test]
    fn help_fits_80_columns() {
        for line in HELP {
            assert!(8 + line.len() < 80, "{line:?}");
        }
    }

    #[test]
    fn commands_map_to_requests() {
        let mut buf = String::new();
        assert_eq!(
            parse("hi").request(&mut buf),
            Some(Request::SendPublic { text: "hi" })
        );
        assert_eq!(
            parse("/part").request(&mut buf),
            Some(Request::Part { title: "" })
        );
        assert_eq!(
            parse("/private bob a b").request(&mut buf),
            Some(Request::SendPrivate {
                recipient: "bob",
                text: "a b"
            })
        );
        assert_eq!(
            parse("/watch  bob   carl ").request(&mut buf),
            Some(Request::Watch { nicks: "bob carl" })
        );
        assert_eq!(parse("/quit").request(&mut buf), None);
        assert_eq!(parse("/help").request(&mut buf), None);
    }
}
