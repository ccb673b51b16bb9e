//! The wire protocol of `PROTOCOL.md`: event codes, typed requests (client to server) and
//! events (server to client), and their decoding and encoding. No I/O happens here.
//!
//! A datagram is a 2-byte big-endian code followed by a UTF-8 payload whose fields are
//! separated by one space, the last field taking the rest of the payload. Decoding borrows
//! from the datagram and never panics: every malformed input is a [`DecodeError`].

use std::fmt;
use std::net::Ipv4Addr;

/// Expands to its second argument: lets a column of the code table drive a repetition in
/// which only the code's name is used.
macro_rules! second {
    ($ignored:tt, $e:expr) => {
        $e
    };
}

/// Generates, from the one table of codes below, everything that lists codes: the constants
/// of [`code`], [`ALL_CODES`], [`REQUEST_CODES`], [`EVENT_CODES`], [`name`], the exhaustive
/// dispatch of both decoders and the `code()` of requests and events, so that no code is
/// known to one of them and not to another.
macro_rules! code_table {
    (
        $(
            $(#[$doc:meta])*
            $num:literal $name:ident
            $(request $req:ident $req_parse:ident)?
            $(event $ev:ident $ev_parse:ident)?
            $(other)?
            ;
        )*
    ) => {
        /// The event codes of the protocol (part 1, the classic protocol, and part 2,
        /// extensions).
        pub mod code {
            $(
                $(#[$doc])*
                pub const $name: u16 = $num;
            )*
        }

        /// Every code of the protocol, in ascending order.
        pub const ALL_CODES: &[u16] = &[$(code::$name),*];

        /// The codes [`Request::decode`] knows, in ascending order.
        pub const REQUEST_CODES: &[u16] = &[$($(second!($req, code::$name),)?)*];

        /// The codes [`Event::decode`] knows, in ascending order.
        pub const EVENT_CODES: &[u16] = &[$($(second!($ev, code::$name),)?)*];

        /// The protocol's name of `code` (`"LOGIN_REQ"` for 20), or `None` for a code the
        /// protocol does not define.
        pub fn name(code: u16) -> Option<&'static str> {
            match code {
                $(code::$name => Some(stringify!($name)),)*
                _ => None,
            }
        }

        /// Decodes the payload of a request with the parser its row names.
        fn decode_request(code: u16, payload: &[u8]) -> Result<Request<'_>, DecodeError> {
            let request = match code {
                $($(code::$name => parse::$req_parse(text(code, payload)?),)?)*
                _ => return Err(DecodeError::UnknownCode(code)),
            };
            request.ok_or(DecodeError::Malformed(code))
        }

        /// Decodes the payload of an event with the parser its row names.
        fn decode_event(code: u16, payload: &[u8]) -> Result<Event<'_>, DecodeError> {
            let event = match code {
                $($(code::$name => parse::$ev_parse(text(code, payload)?),)?)*
                _ => return Err(DecodeError::UnknownCode(code)),
            };
            event.ok_or(DecodeError::Malformed(code))
        }

        fn request_code(request: &Request<'_>) -> u16 {
            match request {
                $($(Request::$req { .. } => code::$name,)?)*
            }
        }

        fn event_code(event: &Event<'_>) -> u16 {
            match event {
                $($(Event::$ev { .. } => code::$name,)?)*
            }
        }
    };
}

// The one table of codes, in ascending order. A row is the code's number and name, then who
// decodes it: `request Variant parser` (a datagram to the server, decoded by `Request::decode`
// into `Request::Variant` with `parse::parser`), `event Variant parser` (a datagram to a
// client, likewise for `Event`), both, or `other` (neither decoder knows it, as SEALED, which
// `crate::auth` opens). The doc comment becomes the constant's.
//
// To add a code: add its row here, its variant to `Request` or `Event`, its parser to
// `parse` (a row of its `parsers!` table, naming how each field is read, or a function:
// payload text in, `None` if malformed) and its arm to the type's `encode`. The compiler
// rejects a row without a variant or parser, and a variant without a row or an `encode`
// arm; the unit tests decode every row and re-encode it.
code_table! {
    //  code name            direction  variant         parser
    /// S→C: an error message.
    10  ERROR                event      Error           error;
    /// C→S: log in with a nickname.
    20  LOGIN_REQ            request    Login           login_req;
    /// S→C: the login succeeded.
    30  LOGIN_ACK            event      LoginAck        login_ack;
    /// C→S: log off.
    40  LOGOFF               request    Logoff          logoff;
    /// C→S: join a channel.
    50  JOIN_REQ             request    Join            join_req;
    /// S→C: a channel was joined (or became current).
    60  JOIN_ACK             event      JoinAck         join_ack;
    /// C→S: leave a channel.
    70  PART_REQ             request    Part            part_req;
    /// S→C: a channel was left.
    80  PART_ACK             event      PartAck         part_ack;
    /// C→S: a message to the current channel.
    90  SEND_PUBLIC          request    SendPublic      send_public;
    /// S→C: a message in a channel.
    100 PUBLIC_MSG           event      PublicMsg       public_msg;
    /// C→S: a message to one user.
    120 SEND_PRIVATE         request    SendPrivate     send_private;
    /// S→C: a message from one user.
    130 PRIVATE_MSG          event      PrivateMsg      private_msg;
    /// S→C: someone joined a channel of yours.
    140 USER_JOINS           event      UserJoins       user_joins;
    /// S→C: someone left a channel of yours.
    150 USER_PARTS           event      UserParts       user_parts;
    /// C→S: list the channels.
    160 LIST_CHANNELS        request    ListChannels    list_channels;
    /// S→C: one channel of the list.
    170 CHANNEL_ITEM         event      ChannelItem     channel_item;
    /// C→S: list the users of the current channel.
    180 LIST_USERS           request    ListUsers       list_users;
    /// S→C: one user of a list.
    190 USER_ITEM            event      UserItem        user_item;
    /// C→S: keepalive.
    200 STILL_HERE           request    StillHere       still_here;
    /// C→S: list logged-in users by nickname prefix (part 2).
    300 WHO_REQ              request    Who             who_req;
    /// C→S: describe one user (part 2).
    310 WHOIS_REQ            request    Whois           whois_req;
    /// C→S: add nicknames to the hot list (part 2).
    320 WATCH_REQ            request    Watch           watch_req;
    /// C→S: remove nicknames from the hot list (part 2).
    330 UNWATCH_REQ          request    Unwatch         unwatch_req;
    /// S→C: a watched nickname logged in (part 2).
    340 USER_ONLINE          event      UserOnline      user_online;
    /// S→C: a watched nickname logged off or timed out (part 2).
    350 USER_OFFLINE         event      UserOffline     user_offline;
    /// C→S: a classic datagram inside a protected session (binary; see `crate::auth`).
    400 SEALED               other;
    /// C→S: start registering the current nickname (OPAQUE registration request).
    410 REGISTER_REQ         request    Register        register_req;
    /// S→C: the server's OPAQUE registration response.
    420 REGISTER_RESP        event      RegisterResp    register_resp;
    /// C→S: the OPAQUE registration record to store.
    430 REGISTER_UPLOAD      request    RegisterUpload  register_upload;
    /// S→C: an account change is durable.
    440 ACCOUNT_ACK          event      AccountAck      account_ack;
    /// C→S: delete the account of the current nickname (protected sessions only).
    450 UNREGISTER_REQ       request    Unregister      unregister_req;
    /// C→S: log in with a password (OPAQUE credential request).
    460 AUTH_REQ             request    Auth            auth_req;
    /// S→C: the server's OPAQUE credential response.
    470 AUTH_CHALLENGE       event      AuthChallenge   auth_challenge;
    /// C→S: the OPAQUE credential finalization; answered with LOGIN_ACK.
    480 AUTH_FINISH          request    AuthFinish      auth_finish;
    /// S→C: prove you receive at your address: send AUTH_REQ again with this token.
    485 AUTH_RETRY           event      AuthRetry       auth_retry;
    /// S→C: a protected session was heard from a new address: answer from there.
    490 PATH_CHALLENGE       event      PathChallenge   path_challenge;
    /// C→S: the answer to PATH_CHALLENGE, sealed, from the address being validated.
    495 PATH_RESPONSE        request    PathResponse    path_response;
    /// C→S: ask for capabilities (part 4).
    500 CAPS_REQ             request    Caps            caps_req;
    /// S→C: the capabilities granted (part 4).
    510 CAPS_ACK             event      CapsAck         caps_ack;
    /// S→C: several events in one datagram (binary; see [`batch`]; part 4).
    520 BATCH                other;
    /// C→S: is the session alive? (part 4)
    530 PING                 request    Ping            ping;
    /// S→C: the answer to PING (part 4).
    540 PONG                 event      Pong            pong;
    /// S→C: the multicast group of a channel (part 4).
    550 MCAST_GROUP          event      McastGroup      mcast_group;
    /// C→S: the client hears a channel on its group (part 4).
    560 MCAST_JOINED         request    McastJoined     mcast_joined;
    /// C→S: the client no longer hears a channel's group (part 4).
    570 MCAST_LEFT           request    McastLeft       mcast_left;
    /// C→S: looking for servers, by broadcast or multicast (part 4).
    580 DISCOVER             request    Discover        discover;
    /// S→C: a server's answer to DISCOVER (part 4).
    590 SERVER_HERE          event      ServerHere      server_here;
    /// S→group: a channel's events on its multicast group (binary; see [`channel_data`];
    /// part 4).
    600 CHANNEL_DATA         other;
    /// Inside CHANNEL_DATA: the group is alive (part 4).
    610 MCAST_PROBE          event      McastProbe      mcast_probe;
    /// C→S: a part-5 client says hello: it gets the message of the day and part-5 notices.
    700 HELLO                request    Hello           hello;
    /// C→S: create a channel and join it as its operator (part 5).
    710 CHAN_CREATE          request    ChanCreate      chan_create;
    /// C→S: set a channel's topic, its description (part 5).
    720 CHAN_TOPIC           request    ChanTopic       chan_topic;
    /// C→S: remove a member from a channel, with a reason (part 5).
    730 CHAN_KICK            request    ChanKick        chan_kick;
    /// C→S: ban a nickname pattern or an account from a channel (part 5).
    740 CHAN_BAN             request    ChanBan         chan_ban;
    /// C→S: lift a ban (part 5).
    750 CHAN_UNBAN           request    ChanUnban       chan_unban;
    /// C→S: change or show a channel's modes, operators and voices (part 5).
    760 CHAN_MODE            request    ChanMode        chan_mode;
    /// C→S: invite a user into a channel (part 5).
    770 CHAN_INVITE          request    ChanInvite      chan_invite;
    /// C→S: give up a created channel (part 5).
    780 CHAN_DROP            request    ChanDrop        chan_drop;
    /// C→S: ask for a channel's recent messages (part 5).
    790 HISTORY_REQ          request    History         history_req;
    /// C→S: a server operator disconnects a user (part 5).
    800 OPER_KILL            request    OperKill        oper_kill;
    /// C→S: a server operator bans an address or network (part 5).
    810 OPER_BAN             request    OperBan         oper_ban;
    /// C→S: a server operator lifts an address ban (part 5).
    820 OPER_UNBAN           request    OperUnban       oper_unban;
    /// C→S: a server operator sends a notice to everyone (part 5).
    830 OPER_NOTICE          request    OperNotice      oper_notice;
    /// C→S: a server operator asks for the server's status (part 5).
    840 OPER_STATUS          request    OperStatus      oper_status;
    /// S→C: the answer to HELLO, after the message of the day (part 5).
    900 HELLO_ACK            event      HelloAck        hello_ack;
    /// S→C: one line of the message of the day (part 5).
    910 MOTD                 event      Motd            motd;
    /// S→C: something a channel operator or the server did in a channel (part 5).
    920 CHAN_NOTICE          event      ChanNotice      chan_notice;
    /// S→C: a channel's modes (part 5).
    930 CHAN_MODES           event      ChanModes       chan_modes;
    /// S→C: one operator, voice, ban or invitation of a channel (part 5).
    940 CHAN_ENTRY           event      ChanEntry       chan_entry;
    /// S→C: you are invited into a channel (part 5).
    950 INVITED              event      Invited         invited;
    /// S→C: one message of a channel's history (part 5).
    960 HISTORY_MSG          event      HistoryMsg      history_msg;
    /// S→C: the end of one batch of history (part 5).
    970 HISTORY_END          event      HistoryEnd      history_end;
    /// S→C: a private message kept while you were away (part 5).
    980 STORED_PRIVATE       event      StoredPrivate   stored_private;
    /// S→C: your private message is kept until its recipient logs in (part 5).
    990 PRIVATE_STORED       event      PrivateStored   private_stored;
    /// S→C: a server operator's notice to everyone (part 5).
    1000 SERVER_NOTICE       event      ServerNotice    server_notice;
    /// S→C: one line of the server's status (part 5).
    1010 STATUS_ITEM         event      StatusItem      status_item;
    /// S→C: a server operator's command was carried out (part 5).
    1020 OPER_ACK            event      OperAck         oper_ack;
    /// C→S: a guest asks for a token that proves it receives at its address (part 3).
    1050 PROVE_REQ           request    ProveReq        prove_req;
    /// S→C: the token to echo in PROVE (part 3).
    1060 PROVE_TOKEN         event      ProveToken      prove_token;
    /// C→S: the token of PROVE_TOKEN, echoed: the guest's address is proved (part 3).
    1070 PROVE               request    Prove           prove;
    /// S→C: the address is proved: the server no longer holds what it sends there to the
    /// budget of an unproved address (part 3).
    1080 PROVED              event      Proved          proved;
    /// C→S: keep no messages from senders matching a mask while you are away; an empty
    /// mask only asks for the list (part 5, password sessions).
    1210 MAIL_REFUSE         request    MailRefuse      mail_refuse;
    /// C→S: stop refusing a mask given to MAIL_REFUSE (part 5, password sessions).
    1220 MAIL_ACCEPT         request    MailAccept      mail_accept;
    /// S→C: the masks whose messages are not kept for you, after MAIL_REFUSE or
    /// MAIL_ACCEPT (part 5).
    1230 MAIL_REFUSALS       event      MailRefusals    mail_refusals;
}

/// The server's default UDP port.
pub const DEFAULT_PORT: u16 = 2027;
/// The default largest datagram the server accepts, in bytes.
pub const DEFAULT_MAX_DATAGRAM: usize = 1024;
/// The largest UDP payload over IPv4.
pub const MAX_UDP_PAYLOAD: usize = 65507;
/// The longest nickname, in bytes.
pub const MAX_NICK_LEN: usize = 32;
/// The longest PING token, in bytes (part 4).
pub const MAX_PING_TOKEN: usize = 32;
/// The length of DISCOVER's payload: `udpchat` padded with spaces (part 4).
pub const DISCOVER_LEN: usize = 64;
/// The word DISCOVER's payload starts with.
pub const DISCOVER_WORD: &str = "udpchat";
/// The group a client looking for servers sends DISCOVER to, on the chat port.
pub const DISCOVERY_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 77, 77);

/// Error texts of the protocol, exactly as classic clients expect them.
pub mod errors {
    /// A datagram longer than the server accepts.
    pub const DATAGRAM_TOO_LONG: &str = "datagram too long";
    /// A payload that is not UTF-8.
    pub const INVALID_TEXT: &str = "invalid text";
    /// A nickname held by another address.
    pub const NICK_IN_USE: &str = "nickname already in use";
    /// A nickname that is empty, too long or has white space or control characters.
    pub const INVALID_NICK: &str = "invalid nickname";
    /// Any request but a login from an address that is not logged in.
    pub const PLEASE_LOG_IN: &str = "please log in";
    /// A code the server does not handle.
    pub const UNIMPLEMENTED: &str = "unimplemented event code";
    /// SEND_PUBLIC or LIST_USERS without a current channel.
    pub const NO_CURRENT_CHANNEL: &str = "no current channel";
    /// SEND_PRIVATE with an empty payload.
    pub const NO_RECIPIENT: &str = "no nickname given for recipient of private message";
    /// WHO_REQ matched more users than one answer holds.
    pub const WHO_TOO_MANY: &str = "more than 100 users match; give a longer prefix";
    /// The server holds `--max-users` users already.
    pub const SERVER_FULL: &str = "server full; try again later";
    /// JOIN_REQ would put the user in more channels than the server allows.
    pub const TOO_MANY_CHANNELS: &str = "too many channels; part one first";
    /// Classic LOGIN_REQ for a registered nickname.
    pub const NICK_REGISTERED: &str = "nickname is registered; log in with a password";
    /// AUTH_REQ for a nickname without an account.
    pub const NO_ACCOUNT: &str = "no account with that nickname";
    /// Too many password logins for one account in a short time.
    pub const TOO_MANY_ATTEMPTS: &str = "too many login attempts; try again in a minute";
    /// An OPAQUE message that does not parse or verify.
    pub const BAD_AUTH_MESSAGE: &str = "malformed authentication message";
    /// AUTH_FINISH that does not verify (or with no login under way).
    pub const LOGIN_FAILED: &str = "login failed";
    /// An account operation that needs a password login.
    pub const NEEDS_PASSWORD_LOGIN: &str = "log in with your password first";
    /// The account store failed.
    pub const STORAGE_FAILED: &str = "account storage failed; try again later";
    /// WATCH_REQ would make the hot list longer than the server keeps.
    pub const HOT_LIST_FULL: &str = "hot list full";
    /// A nickname that looks like a registered one (same confusable skeleton).
    pub const NICK_CONFUSABLE: &str = "nickname is too like a registered one";
    /// Too many new accounts from one address or network lately.
    pub const TOO_MANY_REGISTRATIONS: &str = "too many registrations; try again later";
    /// A server that keeps no accounts (`--accounts-off`).
    pub const ACCOUNTS_OFF: &str = "accounts are off on this server";
    /// PING with a token longer than [`super::MAX_PING_TOKEN`] bytes.
    pub const PING_TOKEN_TOO_LONG: &str = "ping token longer than 32 bytes";
    /// A server operator's request from someone who is not one (part 5).
    pub const NOT_SERVER_OPERATOR: &str = "you are not a server operator";
}

/// Why a datagram could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the 2-byte code: dropped silently.
    #[error("datagram shorter than 2 bytes")]
    TooShort,
    /// Longer than the size limit: answered with `ERROR datagram too long`.
    #[error("datagram of {len} bytes is over the limit of {max}")]
    TooLong {
        /// The datagram's length (at least `max + 1`; a receiver may not know more).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A code this side does not decode.
    #[error("unknown event code {0}")]
    UnknownCode(u16),
    /// The payload is not UTF-8.
    #[error("payload of event {0} is not valid UTF-8")]
    InvalidText(u16),
    /// The payload lacks a field or a number does not parse.
    #[error("payload of event {0} is malformed")]
    Malformed(u16),
}

/// A request from a client to the server, borrowing from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `LOGIN_REQ nickname`.
    Login {
        /// The whole payload; validity is the server's to judge.
        nick: &'a str,
    },
    /// `LOGOFF` (the payload is ignored).
    Logoff,
    /// `JOIN_REQ title`.
    Join {
        /// The title as typed.
        title: &'a str,
    },
    /// `PART_REQ [title]`.
    Part {
        /// The title as typed; empty means the current channel.
        title: &'a str,
    },
    /// `SEND_PUBLIC text`.
    SendPublic {
        /// The message.
        text: &'a str,
    },
    /// `SEND_PRIVATE recipient text`.
    SendPrivate {
        /// The recipient's nickname; empty when the payload was empty.
        recipient: &'a str,
        /// The message (may be empty).
        text: &'a str,
    },
    /// `LIST_CHANNELS`.
    ListChannels,
    /// `LIST_USERS`.
    ListUsers,
    /// `STILL_HERE`.
    StillHere,
    /// `WHO_REQ [prefix]`.
    Who {
        /// Nickname prefix; empty matches everyone.
        prefix: &'a str,
    },
    /// `WHOIS_REQ nickname`.
    Whois {
        /// The nickname asked about.
        nick: &'a str,
    },
    /// `WATCH_REQ nickname ...`.
    Watch {
        /// Space-separated nicknames; see [`words`].
        nicks: &'a str,
    },
    /// `UNWATCH_REQ nickname ...`.
    Unwatch {
        /// Space-separated nicknames; see [`words`].
        nicks: &'a str,
    },
    /// `REGISTER_REQ base64`.
    Register {
        /// Base64 OPAQUE registration request.
        message: &'a str,
    },
    /// `REGISTER_UPLOAD base64`.
    RegisterUpload {
        /// Base64 OPAQUE registration record.
        message: &'a str,
    },
    /// `UNREGISTER_REQ`.
    Unregister,
    /// `AUTH_REQ nickname base64 token [padding]`.
    Auth {
        /// The nickname to log in as.
        nick: &'a str,
        /// Base64 OPAQUE credential request.
        message: &'a str,
        /// The server's retry token (`-` or anything invalid before the server gave one).
        token: &'a str,
    },
    /// `AUTH_FINISH base64`.
    AuthFinish {
        /// Base64 OPAQUE credential finalization.
        message: &'a str,
    },
    /// `PATH_RESPONSE data`.
    PathResponse {
        /// The data of the PATH_CHALLENGE answered.
        data: &'a str,
    },
    /// `CAPS_REQ cap ...` (part 4).
    Caps {
        /// Space-separated caps; see [`words`].
        caps: &'a str,
    },
    /// `PING token` (part 4).
    Ping {
        /// The token to echo (the server refuses more than [`MAX_PING_TOKEN`] bytes).
        token: &'a str,
    },
    /// `MCAST_JOINED title` (part 4).
    McastJoined {
        /// The channel whose group the client hears.
        title: &'a str,
    },
    /// `MCAST_LEFT title` (part 4).
    McastLeft {
        /// The channel whose group the client no longer hears.
        title: &'a str,
    },
    /// `DISCOVER udpchat` padded with spaces to [`DISCOVER_LEN`] bytes (part 4).
    Discover,
    /// `HELLO [client]` (part 5).
    Hello {
        /// What the client calls itself (free text, only logged).
        client: &'a str,
    },
    /// `CHAN_CREATE title [description]` (part 5).
    ChanCreate {
        /// The new channel's title.
        title: &'a str,
        /// Its description.
        description: &'a str,
    },
    /// `CHAN_TOPIC title [text]` (part 5).
    ChanTopic {
        /// The channel.
        title: &'a str,
        /// The new topic (description); may be empty.
        text: &'a str,
    },
    /// `CHAN_KICK title nickname [reason]` (part 5).
    ChanKick {
        /// The channel.
        title: &'a str,
        /// Who is removed.
        nick: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// `CHAN_BAN title seconds mask [reason]` (part 5).
    ChanBan {
        /// The channel.
        title: &'a str,
        /// How long, in seconds, as typed; `0` for until lifted.
        seconds: &'a str,
        /// A nickname pattern or `account:NAME`.
        mask: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// `CHAN_UNBAN title mask` (part 5).
    ChanUnban {
        /// The channel.
        title: &'a str,
        /// The mask as banned.
        mask: &'a str,
    },
    /// `CHAN_MODE title [change [argument]]` (part 5).
    ChanMode {
        /// The channel.
        title: &'a str,
        /// `+i`, `-m`, `+l`, `+o`, ... or empty to show the modes.
        change: &'a str,
        /// The change's argument (a count or a nickname), if it takes one.
        arg: &'a str,
    },
    /// `CHAN_INVITE title nickname` (part 5).
    ChanInvite {
        /// The channel.
        title: &'a str,
        /// Who is invited.
        nick: &'a str,
    },
    /// `CHAN_DROP title` (part 5).
    ChanDrop {
        /// The channel.
        title: &'a str,
    },
    /// `HISTORY_REQ title since|last number` (part 5).
    History {
        /// The channel.
        title: &'a str,
        /// `since` (a message id) or `last` (a count).
        how: &'a str,
        /// The id or count, as typed.
        number: &'a str,
    },
    /// `OPER_KILL nickname [reason]` (part 5).
    OperKill {
        /// Who is disconnected.
        nick: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// `OPER_BAN seconds address[/bits] [reason]` (part 5).
    OperBan {
        /// How long, in seconds, as typed; `0` for until lifted.
        seconds: &'a str,
        /// The address or network.
        net: &'a str,
        /// Why.
        reason: &'a str,
    },
    /// `OPER_UNBAN address[/bits]` (part 5).
    OperUnban {
        /// The address or network as banned.
        net: &'a str,
    },
    /// `OPER_NOTICE text` (part 5).
    OperNotice {
        /// The notice.
        text: &'a str,
    },
    /// `OPER_STATUS` (part 5).
    OperStatus,
    /// `PROVE_REQ` (part 3): a token, please.
    ProveReq,
    /// `PROVE token` (part 3): the token of a PROVE_TOKEN, echoed.
    Prove {
        /// The token as the server sent it.
        token: &'a str,
    },
    /// `MAIL_REFUSE [mask]` (part 5): refuse kept messages from senders matching `mask`.
    MailRefuse {
        /// A nickname pattern or `account:NAME`, as channel bans take; empty: only list.
        mask: &'a str,
    },
    /// `MAIL_ACCEPT mask` (part 5): stop refusing `mask`.
    MailAccept {
        /// A mask as given to MAIL_REFUSE.
        mask: &'a str,
    },
}

/// An event from the server to a client, borrowing its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// `ERROR message`.
    Error {
        /// The error text.
        message: &'a str,
    },
    /// `LOGIN_ACK nickname`.
    LoginAck {
        /// The nickname as typed.
        nick: &'a str,
    },
    /// `JOIN_ACK title count description`.
    JoinAck(ChannelInfo<'a>),
    /// `PART_ACK title count description`.
    PartAck(ChannelInfo<'a>),
    /// `PUBLIC_MSG title sender text`.
    PublicMsg {
        /// The channel.
        title: &'a str,
        /// The sender's nickname.
        sender: &'a str,
        /// The message.
        text: &'a str,
    },
    /// `PRIVATE_MSG sender text`.
    PrivateMsg {
        /// The sender's nickname.
        sender: &'a str,
        /// The message.
        text: &'a str,
    },
    /// `USER_JOINS title nickname`.
    UserJoins {
        /// The channel.
        title: &'a str,
        /// Who joined.
        nick: &'a str,
    },
    /// `USER_PARTS title nickname`.
    UserParts {
        /// The channel.
        title: &'a str,
        /// Who left.
        nick: &'a str,
    },
    /// `CHANNEL_ITEM title count description`.
    ChannelItem(ChannelInfo<'a>),
    /// `USER_ITEM nickname seconds title ...`.
    UserItem {
        /// The nickname as typed.
        nick: &'a str,
        /// Whole seconds since the user logged in.
        seconds: u64,
        /// The user's channel titles, most recent first, separated by one space.
        channels: &'a str,
    },
    /// `USER_ONLINE nickname`.
    UserOnline {
        /// The nickname that logged in.
        nick: &'a str,
    },
    /// `USER_OFFLINE nickname`.
    UserOffline {
        /// The nickname that logged off.
        nick: &'a str,
    },
    /// `REGISTER_RESP base64`.
    RegisterResp {
        /// Base64 OPAQUE registration response.
        message: &'a str,
    },
    /// `ACCOUNT_ACK what nickname`: `registered`, `changed` or `unregistered`.
    AccountAck {
        /// What became durable.
        what: &'a str,
        /// The account's nickname.
        nick: &'a str,
    },
    /// `AUTH_CHALLENGE base64`.
    AuthChallenge {
        /// Base64 OPAQUE credential response.
        message: &'a str,
    },
    /// `AUTH_RETRY token`.
    AuthRetry {
        /// The token to send back in AUTH_REQ.
        token: &'a str,
    },
    /// `PATH_CHALLENGE data`.
    PathChallenge {
        /// Data to echo in PATH_RESPONSE.
        data: &'a str,
    },
    /// `CAPS_ACK cap ...` (part 4).
    CapsAck {
        /// The caps granted, space-separated (may be empty).
        caps: &'a str,
    },
    /// `PONG token` (part 4).
    Pong {
        /// The PING's token.
        token: &'a str,
    },
    /// `MCAST_GROUP title group port key from` (part 4).
    McastGroup {
        /// The channel.
        title: &'a str,
        /// Its group address (IPv4 or IPv6).
        group: &'a str,
        /// The group's port.
        port: u16,
        /// The channel key, base64 of 32 bytes.
        key: &'a str,
        /// The first sequence number this key seals for the client: every CHANNEL_DATA of
        /// the channel from this one on carries this key's tag, and an earlier key of the
        /// channel is good only for sequences below it.
        from: u64,
    },
    /// `SERVER_HERE port name users` (part 4).
    ServerHere {
        /// The chat port.
        port: u16,
        /// The server's name (may hold spaces).
        name: &'a str,
        /// Users logged in.
        users: u64,
    },
    /// `MCAST_PROBE title`, inside CHANNEL_DATA (part 4).
    McastProbe {
        /// The channel.
        title: &'a str,
    },
    /// `HELLO_ACK history-length server-ms` (part 5).
    HelloAck {
        /// Messages each channel keeps for HISTORY_REQ.
        history: u64,
        /// The server's clock, milliseconds since the Unix epoch.
        now_ms: u64,
    },
    /// `MOTD text` (part 5).
    Motd {
        /// One line of the message of the day.
        text: &'a str,
    },
    /// `CHAN_NOTICE title actor action [arguments]` (part 5).
    ChanNotice {
        /// The channel.
        title: &'a str,
        /// Who did it.
        actor: &'a str,
        /// What: `create`, `topic`, `kick`, `ban`, `unban`, `mode`, `invite`, `drop`.
        action: &'a str,
        /// The action's arguments, the last taking the rest.
        args: &'a str,
    },
    /// `CHAN_MODES title modes limit founder` (part 5).
    ChanModes {
        /// The channel.
        title: &'a str,
        /// `+` and the mode letters set.
        modes: &'a str,
        /// The member limit, 0 for none.
        limit: u64,
        /// Who created it, `-` for a configured channel.
        founder: &'a str,
    },
    /// `CHAN_ENTRY title kind text` (part 5).
    ChanEntry {
        /// The channel.
        title: &'a str,
        /// `op`, `voice`, `ban` or `invite`.
        kind: &'a str,
        /// The entry (for a ban: mask, end, setter and reason).
        text: &'a str,
    },
    /// `INVITED title by` (part 5).
    Invited {
        /// The channel.
        title: &'a str,
        /// Who invited.
        by: &'a str,
    },
    /// `HISTORY_MSG title id ms sender text` (part 5).
    HistoryMsg {
        /// The channel.
        title: &'a str,
        /// The message's id.
        id: u64,
        /// When it was sent, milliseconds since the Unix epoch.
        ms: u64,
        /// Its sender.
        sender: &'a str,
        /// Its text.
        text: &'a str,
    },
    /// `HISTORY_END title last-id more` (part 5).
    HistoryEnd {
        /// The channel.
        title: &'a str,
        /// The id of the last message sent in this batch (0 when none was).
        last: u64,
        /// How many more messages the request covers (ask `since last` for them).
        more: u64,
    },
    /// `STORED_PRIVATE ms sender text` (part 5).
    StoredPrivate {
        /// When it was sent, milliseconds since the Unix epoch.
        ms: u64,
        /// Its sender.
        sender: &'a str,
        /// Its text.
        text: &'a str,
    },
    /// `PRIVATE_STORED recipient` (part 5).
    PrivateStored {
        /// The registered user who is away.
        recipient: &'a str,
    },
    /// `SERVER_NOTICE operator text` (part 5).
    ServerNotice {
        /// The operator who sent it.
        from: &'a str,
        /// The notice.
        text: &'a str,
    },
    /// `STATUS_ITEM key value` (part 5).
    StatusItem {
        /// What is counted.
        key: &'a str,
        /// Its value.
        value: &'a str,
    },
    /// `OPER_ACK action target [detail]` (part 5).
    OperAck {
        /// `kill`, `ban`, `unban` or `notice`.
        action: &'a str,
        /// A nickname or a network (`-` for a notice).
        target: &'a str,
        /// A reason or an expiry.
        detail: &'a str,
    },
    /// `PROVE_TOKEN token` (part 3).
    ProveToken {
        /// The token to send back in PROVE.
        token: &'a str,
    },
    /// `PROVED` (part 3): the address is proved.
    Proved,
    /// `MAIL_REFUSALS [mask ...]` (part 5): the refused masks, separated by spaces.
    MailRefusals {
        /// The masks; empty when nobody is refused.
        masks: &'a str,
    },
}

/// A channel as JOIN_ACK, PART_ACK and CHANNEL_ITEM describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelInfo<'a> {
    /// The title as configured.
    pub title: &'a str,
    /// Members at the time of the answer.
    pub count: u32,
    /// The description.
    pub description: &'a str,
}

/// Splits a list of nicknames (WATCH_REQ, UNWATCH_REQ) into its words, skipping empty ones.
pub fn words(list: &str) -> impl Iterator<Item = &str> {
    list.split(' ').filter(|w| !w.is_empty())
}

/// Reads the code and checks the size limit; returns the code and the raw payload.
///
/// # Errors
/// [`DecodeError::TooShort`] under 2 bytes, [`DecodeError::TooLong`] over `max` bytes.
pub fn split_header(datagram: &[u8], max: usize) -> Result<(u16, &[u8]), DecodeError> {
    match datagram {
        [hi, lo, payload @ ..] => {
            if datagram.len() > max {
                return Err(DecodeError::TooLong {
                    len: datagram.len(),
                    max,
                });
            }
            Ok((u16::from_be_bytes([*hi, *lo]), payload))
        }
        _ => Err(DecodeError::TooShort),
    }
}

fn text(code: u16, payload: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(payload).map_err(|_| DecodeError::InvalidText(code))
}

/// Whether `nick` may be a nickname: not empty, at most [`MAX_NICK_LEN`] bytes, and without
/// white space (which would split the fields it is sent in) or control characters.
pub fn valid_nick(nick: &str) -> bool {
    !nick.is_empty()
        && nick.len() <= MAX_NICK_LEN
        && !nick.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// The payload parsers the code table names, one per row and direction. Each gets its
/// code's payload as text and answers `None` when a field is missing or a number does not
/// parse, which the decoder reports as [`DecodeError::Malformed`].
///
/// Nearly every payload is fields separated by one space, the last taking the rest: those
/// parsers are the rows of the `parsers!` table below, which names for each field how it is
/// read. The two payloads of another shape have a function of their own after it.
mod parse {
    use super::{ChannelInfo, Event, Request};

    /// A payload being read field by field, from the front.
    struct Fields<'a>(&'a str);

    impl<'a> Fields<'a> {
        /// The next field, which more must follow (after one space).
        fn word<T: Field<'a>>(&mut self) -> Option<T> {
            let (word, rest) = self.0.split_once(' ')?;
            self.0 = rest;
            T::read(word)
        }

        /// The next field, empty when the payload has ended: it and all after it may be
        /// missing.
        fn field<T: Field<'a>>(&mut self) -> Option<T> {
            let (field, rest) = self.0.split_once(' ').unwrap_or((self.0, ""));
            self.0 = rest;
            T::read(field)
        }

        /// All that is left: the last field, which may hold spaces.
        fn rest<T: Field<'a>>(&mut self) -> Option<T> {
            T::read(std::mem::take(&mut self.0))
        }
    }

    /// What a field is read as: its text, or a number (`None` if it is not one).
    trait Field<'a>: Sized {
        fn read(text: &'a str) -> Option<Self>;
    }

    impl<'a> Field<'a> for &'a str {
        fn read(text: &'a str) -> Option<Self> {
            Some(text)
        }
    }

    macro_rules! numbers {
        ($($t:ty)*) => {$(
            impl Field<'_> for $t {
                fn read(text: &str) -> Option<Self> {
                    text.parse().ok()
                }
            }
        )*};
    }

    numbers!(u16 u32 u64);

    /// Makes, for each row `parser => Type::Variant { field: how, ... };`, the function
    /// `parser` that reads the fields in the order written (a struct expression evaluates
    /// its fields in that order), each with the method `how` of [`Fields`], as the type the
    /// field has; what is left after the last one is ignored. A row without fields ignores
    /// the payload; `Type::Variant(inner)` wraps what the parser `inner` reads.
    macro_rules! parsers {
        ($(
            $parser:ident => $ty:ident $(::$variant:ident)? $(($inner:ident))?
                $({ $($field:ident: $how:ident),* })?;
        )*) => {$(
            pub(super) fn $parser(p: &str) -> Option<$ty<'_>> {
                #[allow(unused_mut, unused_variables)]
                let mut f = Fields(p);
                Some($ty $(::$variant)? $(($inner(p)?))? $({ $($field: f.$how()?),* })?)
            }
        )*};
    }

    parsers! {
        // No payload (whatever comes is ignored).
        logoff          => Request::Logoff;
        list_channels   => Request::ListChannels;
        list_users      => Request::ListUsers;
        still_here      => Request::StillHere;
        unregister_req  => Request::Unregister;
        oper_status     => Request::OperStatus;
        prove_req       => Request::ProveReq;
        proved          => Event::Proved;

        // One field, the whole payload (it may hold spaces, and be empty).
        login_req       => Request::Login { nick: rest };
        join_req        => Request::Join { title: rest };
        part_req        => Request::Part { title: rest };
        send_public     => Request::SendPublic { text: rest };
        who_req         => Request::Who { prefix: rest };
        whois_req       => Request::Whois { nick: rest };
        watch_req       => Request::Watch { nicks: rest };
        unwatch_req     => Request::Unwatch { nicks: rest };
        register_req    => Request::Register { message: rest };
        register_upload => Request::RegisterUpload { message: rest };
        auth_finish     => Request::AuthFinish { message: rest };
        path_response   => Request::PathResponse { data: rest };
        caps_req        => Request::Caps { caps: rest };
        ping            => Request::Ping { token: rest };
        mcast_joined    => Request::McastJoined { title: rest };
        mcast_left      => Request::McastLeft { title: rest };
        hello           => Request::Hello { client: rest };
        chan_drop       => Request::ChanDrop { title: rest };
        oper_unban      => Request::OperUnban { net: rest };
        oper_notice     => Request::OperNotice { text: rest };
        prove           => Request::Prove { token: rest };
        mail_refuse     => Request::MailRefuse { mask: rest };
        mail_accept     => Request::MailAccept { mask: rest };
        prove_token     => Event::ProveToken { token: rest };
        mail_refusals   => Event::MailRefusals { masks: rest };
        error           => Event::Error { message: rest };
        login_ack       => Event::LoginAck { nick: rest };
        user_online     => Event::UserOnline { nick: rest };
        user_offline    => Event::UserOffline { nick: rest };
        register_resp   => Event::RegisterResp { message: rest };
        auth_challenge  => Event::AuthChallenge { message: rest };
        auth_retry      => Event::AuthRetry { token: rest };
        path_challenge  => Event::PathChallenge { data: rest };
        caps_ack        => Event::CapsAck { caps: rest };
        pong            => Event::Pong { token: rest };
        mcast_probe     => Event::McastProbe { title: rest };
        motd            => Event::Motd { text: rest };
        private_stored  => Event::PrivateStored { recipient: rest };

        // Requests of several fields: any may be missing and is then empty; the handler
        // says what is wrong with it.
        send_private    => Request::SendPrivate { recipient: field, text: rest };
        // What follows the token only pads the request (it pays for the answers to a
        // stranger).
        auth_req        => Request::Auth { nick: field, message: field, token: field };
        chan_create     => Request::ChanCreate { title: field, description: rest };
        chan_topic      => Request::ChanTopic { title: field, text: rest };
        chan_kick       => Request::ChanKick { title: field, nick: field, reason: rest };
        chan_ban        => Request::ChanBan {
                               title: field, seconds: field, mask: field, reason: rest
                           };
        chan_unban      => Request::ChanUnban { title: field, mask: rest };
        chan_mode       => Request::ChanMode { title: field, change: field, arg: rest };
        chan_invite     => Request::ChanInvite { title: field, nick: rest };
        history_req     => Request::History { title: field, how: field, number: rest };
        oper_kill       => Request::OperKill { nick: field, reason: rest };
        oper_ban        => Request::OperBan { seconds: field, net: field, reason: rest };

        // Events of several fields: a client needs every field up to the last one read
        // with `field`.
        channel_info    => ChannelInfo { title: word, count: field, description: rest };
        join_ack        => Event::JoinAck(channel_info);
        part_ack        => Event::PartAck(channel_info);
        public_msg      => Event::PublicMsg { title: word, sender: field, text: rest };
        private_msg     => Event::PrivateMsg { sender: field, text: rest };
        user_joins      => Event::UserJoins { title: word, nick: rest };
        user_parts      => Event::UserParts { title: word, nick: rest };
        channel_item    => Event::ChannelItem(channel_info);
        user_item       => Event::UserItem { nick: word, seconds: field, channels: rest };
        account_ack     => Event::AccountAck { what: word, nick: rest };
        mcast_group     => Event::McastGroup {
                               title: word, group: word, port: word, key: word, from: field
                           };
        // Fields after these two are for later versions and ignored.
        hello_ack       => Event::HelloAck { history: word, now_ms: field };
        chan_notice     => Event::ChanNotice {
                               title: word, actor: word, action: field, args: rest
                           };
        chan_modes      => Event::ChanModes {
                               title: word, modes: word, limit: field, founder: rest
                           };
        chan_entry      => Event::ChanEntry { title: word, kind: field, text: rest };
        invited         => Event::Invited { title: word, by: rest };
        history_msg     => Event::HistoryMsg {
                               title: word, id: word, ms: word, sender: field, text: rest
                           };
        history_end     => Event::HistoryEnd { title: word, last: word, more: field };
        stored_private  => Event::StoredPrivate { ms: word, sender: field, text: rest };
        server_notice   => Event::ServerNotice { from: field, text: rest };
        status_item     => Event::StatusItem { key: field, value: rest };
        oper_ack        => Event::OperAck { action: word, target: field, detail: rest };
    }

    pub(super) fn discover(p: &str) -> Option<Request<'_>> {
        // The padding is spaces, and there must be all of it: the answer may be as large as
        // a full request, never larger than the one received.
        (p.len() >= super::DISCOVER_LEN && p.trim_end_matches(' ') == super::DISCOVER_WORD)
            .then_some(Request::Discover)
    }

    pub(super) fn server_here(p: &str) -> Option<Event<'_>> {
        // The server's name may hold spaces: the count of users is the last field.
        let (port, rest) = p.split_once(' ')?;
        let (name, users) = rest.rsplit_once(' ')?;
        Some(Event::ServerHere {
            port: port.parse().ok()?,
            name,
            users: users.parse().ok()?,
        })
    }
}

impl<'a> Request<'a> {
    /// Decodes a datagram sent to the server, accepting at most `max` bytes.
    ///
    /// # Errors
    /// Any [`DecodeError`]; the checks run in the order: length, code, text. A code outside
    /// [`REQUEST_CODES`], events' included, is [`DecodeError::UnknownCode`].
    pub fn decode(datagram: &'a [u8], max: usize) -> Result<Self, DecodeError> {
        let (code, payload) = split_header(datagram, max)?;
        decode_request(code, payload)
    }

    /// The request's event code.
    pub fn code(&self) -> u16 {
        request_code(self)
    }

    /// Appends the datagram for this request to `out`. LOGOFF carries no nickname here;
    /// use [`encode_raw`] to send one as classic clients do.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let payload: &[&str] = match self {
            Request::Login { nick } => &[nick],
            Request::Join { title } | Request::Part { title } => &[title],
            Request::SendPublic { text } => &[text],
            // Without text the separator is left out, as the decoder needs none: with it
            // the datagram would be a byte longer than one that decodes to this request.
            Request::SendPrivate {
                recipient,
                text: "",
            } => &[recipient],
            Request::SendPrivate { recipient, text } => &[recipient, " ", text],
            Request::Who { prefix } => &[prefix],
            Request::Whois { nick } => &[nick],
            Request::Watch { nicks } | Request::Unwatch { nicks } => &[nicks],
            Request::Register { message }
            | Request::RegisterUpload { message }
            | Request::AuthFinish { message } => &[message],
            Request::PathResponse { data } => &[data],
            // As for SEND_PRIVATE: no separator without a message (or token).
            Request::Auth {
                nick,
                message: "",
                token: "",
            } => &[nick],
            Request::Auth {
                nick,
                message,
                token: "",
            } => &[nick, " ", message],
            Request::Auth {
                nick,
                message,
                token,
            } => &[nick, " ", message, " ", token],
            Request::Caps { caps } => &[caps],
            Request::Ping { token } => &[token],
            Request::McastJoined { title } | Request::McastLeft { title } => &[title],
            Request::Discover => {
                out.extend_from_slice(&code::DISCOVER.to_be_bytes());
                out.extend_from_slice(DISCOVER_WORD.as_bytes());
                out.resize(out.len() + DISCOVER_LEN - DISCOVER_WORD.len(), b' ');
                return;
            }
            Request::Hello { client } => &[client],
            Request::ChanDrop { title } => &[title],
            Request::OperUnban { net } => &[net],
            Request::OperNotice { text } => &[text],
            Request::Prove { token } => &[token],
            Request::MailRefuse { mask } | Request::MailAccept { mask } => &[mask],
            // Two or more fields: the trailing ones are left out when empty (with their
            // separators), so a request re-encodes to no more bytes than it came in.
            Request::ChanCreate {
                title,
                description: rest,
            }
            | Request::ChanTopic { title, text: rest }
            | Request::ChanUnban { title, mask: rest }
            | Request::ChanInvite { title, nick: rest }
            | Request::OperKill {
                nick: title,
                reason: rest,
            } => return encode_fields(self.code(), &[title, rest], out),
            Request::ChanKick {
                title,
                nick,
                reason,
            } => return encode_fields(self.code(), &[title, nick, reason], out),
            Request::ChanMode { title, change, arg } => {
                return encode_fields(self.code(), &[title, change, arg], out)
            }
            Request::History { title, how, number } => {
                return encode_fields(self.code(), &[title, how, number], out)
            }
            Request::OperBan {
                seconds,
                net,
                reason,
            } => return encode_fields(self.code(), &[seconds, net, reason], out),
            Request::ChanBan {
                title,
                seconds,
                mask,
                reason,
            } => return encode_fields(self.code(), &[title, seconds, mask, reason], out),
            Request::Logoff
            | Request::ListChannels
            | Request::ListUsers
            | Request::StillHere
            | Request::Unregister
            | Request::OperStatus
            | Request::ProveReq => &[],
        };
        encode_parts(self.code(), payload, out);
    }

    /// The datagram for this request as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// Appends a datagram made of `code` and `payload` to `out`.
pub fn encode_raw(code: u16, payload: &str, out: &mut Vec<u8>) {
    encode_parts(code, &[payload], out);
}

/// Encodes space-separated fields, leaving out empty trailing ones with their separators.
fn encode_fields(code: u16, fields: &[&str], out: &mut Vec<u8>) {
    let used = fields
        .iter()
        .rposition(|f| !f.is_empty())
        .map_or(0, |i| i + 1);
    out.extend_from_slice(&code.to_be_bytes());
    for (i, f) in fields[..used].iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.as_bytes());
    }
}

fn encode_parts(code: u16, parts: &[&str], out: &mut Vec<u8>) {
    out.reserve(2 + parts.iter().map(|p| p.len()).sum::<usize>());
    out.extend_from_slice(&code.to_be_bytes());
    for part in parts {
        out.extend_from_slice(part.as_bytes());
    }
}

/// Appends fields separated by one space; the last may hold spaces, and is left out with
/// its separator when empty.
fn put_fields(fields: &[&str], out: &mut Vec<u8>) {
    let used = match fields.split_last() {
        Some((&"", _)) => fields.len() - 1,
        _ => fields.len(),
    };
    for (i, f) in fields[..used].iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(f.as_bytes());
    }
}

/// Appends a space and `field`.
fn push_field(field: &str, out: &mut Vec<u8>) {
    out.push(b' ');
    out.extend_from_slice(field.as_bytes());
}

/// Appends a space and `n` in decimal.
fn push_number(n: u64, out: &mut Vec<u8>) {
    out.push(b' ');
    push_u64(n, out);
}

/// Writes a number in decimal without going through `fmt`, which the fan-out path avoids.
fn push_u64(n: u64, out: &mut Vec<u8>) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

impl<'a> Event<'a> {
    /// The event's code.
    pub fn code(&self) -> u16 {
        event_code(self)
    }

    /// Appends the datagram for this event to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.code().to_be_bytes());
        let mut put = |s: &str| out.extend_from_slice(s.as_bytes());
        match self {
            Event::Error { message } => put(message),
            Event::LoginAck { nick } | Event::UserOnline { nick } | Event::UserOffline { nick } => {
                put(nick)
            }
            Event::RegisterResp { message } | Event::AuthChallenge { message } => put(message),
            Event::AuthRetry { token: data } | Event::PathChallenge { data } => put(data),
            Event::CapsAck { caps } => put(caps),
            Event::Pong { token } => put(token),
            Event::McastProbe { title } => put(title),
            Event::McastGroup {
                title,
                group,
                port,
                key,
                from,
            } => {
                put(title);
                push_field(group, out);
                push_number(u64::from(*port), out);
                push_field(key, out);
                push_number(*from, out);
            }
            Event::ServerHere { port, name, users } => {
                push_u64(u64::from(*port), out);
                push_field(name, out);
                push_number(*users, out);
            }
            Event::AccountAck { what, nick } => {
                put(what);
                push_field(nick, out);
            }
            Event::JoinAck(info) | Event::PartAck(info) | Event::ChannelItem(info) => {
                put(info.title);
                push_number(u64::from(info.count), out);
                push_field(info.description, out);
            }
            Event::PublicMsg {
                title,
                sender,
                text,
            } => {
                put(title);
                push_field(sender, out);
                push_field(text, out);
            }
            Event::PrivateMsg { sender, text } => {
                put(sender);
                push_field(text, out);
            }
            Event::UserJoins { title, nick } | Event::UserParts { title, nick } => {
                put(title);
                push_field(nick, out);
            }
            Event::UserItem {
                nick,
                seconds,
                channels,
            } => {
                put(nick);
                push_number(*seconds, out);
                if !channels.is_empty() {
                    push_field(channels, out);
                }
            }
            Event::HelloAck { history, now_ms } => {
                push_u64(*history, out);
                push_number(*now_ms, out);
            }
            Event::Motd { text } | Event::PrivateStored { recipient: text } => put(text),
            Event::ChanNotice {
                title,
                actor,
                action,
                args,
            } => put_fields(&[title, actor, action, args], out),
            // The decoder needs the separators up to the limit (the founder may be left
            // out when empty), and INVITED's one separator.
            Event::ChanModes {
                title,
                modes,
                limit,
                founder,
            } => {
                put(title);
                push_field(modes, out);
                push_number(*limit, out);
                if !founder.is_empty() {
                    push_field(founder, out);
                }
            }
            Event::ChanEntry { title, kind, text } => put_fields(&[title, kind, text], out),
            Event::Invited { title, by } => {
                put(title);
                push_field(by, out);
            }
            Event::HistoryMsg {
                title,
                id,
                ms,
                sender,
                text,
            } => {
                put(title);
                push_number(*id, out);
                push_number(*ms, out);
                out.push(b' ');
                put_fields(&[sender, text], out);
            }
            Event::HistoryEnd { title, last, more } => {
                put(title);
                push_number(*last, out);
                push_number(*more, out);
            }
            Event::StoredPrivate { ms, sender, text } => {
                push_u64(*ms, out);
                out.push(b' ');
                put_fields(&[sender, text], out);
            }
            Event::ServerNotice { from, text } => put_fields(&[from, text], out),
            Event::StatusItem { key, value } => put_fields(&[key, value], out),
            Event::OperAck {
                action,
                target,
                detail,
            } => put_fields(&[action, target, detail], out),
            Event::ProveToken { token } => put(token),
            Event::Proved => {}
            Event::MailRefusals { masks } => put(masks),
        }
    }

    /// The datagram for this event as a new vector.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes a datagram sent by a server (any length up to the UDP limit).
    ///
    /// # Errors
    /// Any [`DecodeError`]: too short, an unknown code (any outside [`EVENT_CODES`], requests'
    /// included), text that is not UTF-8, a missing field or a count that is not a number.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let (code, payload) = split_header(datagram, usize::MAX)?;
        decode_event(code, payload)
    }
}

impl fmt::Display for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dgram(code: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    /// Decodes the request `d` under the size limit `max` and re-encodes it; the bytes it
    /// re-encodes to (returned) must decode to the same request under the same limit.
    fn re_encode_within(d: &[u8], max: usize) -> Vec<u8> {
        let req = Request::decode(d, max).unwrap();
        let again = req.to_bytes();
        assert_eq!(Request::decode(&again, max), Ok(req));
        again
    }

    #[test]
    fn short_datagrams_are_too_short() {
        assert_eq!(Request::decode(&[], 1024), Err(DecodeError::TooShort));
        assert_eq!(Request::decode(&[0], 1024), Err(DecodeError::TooShort));
        assert_eq!(Event::decode(&[7]), Err(DecodeError::TooShort));
    }

    #[test]
    fn size_limit_counts_the_whole_datagram() {
        let at_limit = dgram(code::SEND_PUBLIC, &[b'a'; 1022]);
        assert!(Request::decode(&at_limit, 1024).is_ok());
        let over = dgram(code::SEND_PUBLIC, &[b'a'; 1023]);
        assert_eq!(
            Request::decode(&over, 1024),
            Err(DecodeError::TooLong {
                len: 1025,
                max: 1024
            })
        );
    }

    #[test]
    fn unknown_and_server_codes_are_unknown_requests() {
        assert_eq!(
            Request::decode(&dgram(999, b"x"), 1024),
            Err(DecodeError::UnknownCode(999))
        );
        assert_eq!(
            Request::decode(&dgram(code::LOGIN_ACK, b"x"), 1024),
            Err(DecodeError::UnknownCode(code::LOGIN_ACK))
        );
    }

    #[test]
    fn invalid_utf8_is_invalid_text() {
        assert_eq!(
            Request::decode(&dgram(code::SEND_PUBLIC, &[0xff, 0xfe]), 1024),
            Err(DecodeError::InvalidText(code::SEND_PUBLIC))
        );
    }

    #[test]
    fn private_message_splits_recipient_from_text_with_spaces() {
        for (payload, recipient, text) in [
            (&b"bob hello  there "[..], "bob", "hello  there "),
            (b"", "", ""),
        ] {
            let d = dgram(code::SEND_PRIVATE, payload);
            let expected = Request::SendPrivate { recipient, text };
            assert_eq!(Request::decode(&d, 1024), Ok(expected));
        }
    }

    #[test]
    fn private_message_without_text_re_encodes_within_the_limit() {
        // Found by the `decode` fuzz target: SEND_PRIVATE with an empty payload, accepted
        // under a 2-byte limit, re-encoded with a trailing space and so came back too long.
        re_encode_within(&dgram(code::SEND_PRIVATE, b""), 2);
        let d = dgram(code::SEND_PRIVATE, b"bob");
        assert_eq!(re_encode_within(&d, 5), d);
    }

    #[test]
    fn auth_request_without_message_re_encodes_within_the_limit() {
        // Found by the `decode` fuzz target: AUTH_REQ with a nickname and nothing else
        // re-encoded with a trailing space and so came back one byte too long.
        let d = dgram(code::AUTH_REQ, b"\t");
        assert_eq!(re_encode_within(&d, 3), d);
    }

    #[test]
    fn every_request_round_trips() {
        let all = [
            Request::Login { nick: "Ann" },
            Request::Logoff,
            Request::Join { title: "Pets" },
            Request::Part { title: "" },
            Request::SendPublic { text: "hi all " },
            Request::SendPrivate {
                recipient: "bob",
                text: "psst x",
            },
            Request::ListChannels,
            Request::ListUsers,
            Request::StillHere,
            Request::Who { prefix: "a" },
            Request::Whois { nick: "bob" },
            Request::Watch { nicks: "a b" },
            Request::Unwatch { nicks: "b" },
            Request::Register { message: "AAAA" },
            Request::RegisterUpload { message: "BBBB" },
            Request::Unregister,
            Request::Auth {
                nick: "ann",
                message: "CCCC",
                token: "",
            },
            Request::Auth {
                nick: "ann",
                message: "CCCC",
                token: "tok",
            },
            Request::Auth {
                nick: "ann",
                message: "",
                token: "tok",
            },
            Request::AuthFinish { message: "DDDD" },
            Request::PathResponse { data: "0011" },
            Request::ProveReq,
            Request::Prove {
                token: "AAAAAAECAwQFBgcICQoL",
            },
        ];
        for r in all {
            let bytes = r.to_bytes();
            assert_eq!(Request::decode(&bytes, 1024), Ok(r), "{r:?}");
        }
    }

    #[test]
    fn every_event_round_trips() {
        let info = ChannelInfo {
            title: "Pets",
            count: 12,
            description: "For our furry and feathered friends",
        };
        let all = [
            Event::Error {
                message: "please log in",
            },
            Event::LoginAck { nick: "Ann" },
            Event::JoinAck(info),
            Event::PartAck(info),
            Event::ChannelItem(info),
            Event::PublicMsg {
                title: "Pets",
                sender: "Ann",
                text: "a b  c",
            },
            Event::PrivateMsg {
                sender: "Ann",
                text: "x y",
            },
            Event::UserJoins {
                title: "Pets",
                nick: "Ann",
            },
            Event::UserParts {
                title: "Pets",
                nick: "Ann",
            },
            Event::UserItem {
                nick: "Ann",
                seconds: 1234567,
                channels: "Pets Weather",
            },
            Event::UserItem {
                nick: "Bob",
                seconds: 0,
                channels: "",
            },
            Event::UserOnline { nick: "Ann" },
            Event::UserOffline { nick: "Ann" },
            Event::RegisterResp { message: "AA==" },
            Event::AccountAck {
                what: "registered",
                nick: "Ann",
            },
            Event::AuthChallenge { message: "BB==" },
            Event::AuthRetry { token: "t" },
            Event::PathChallenge { data: "0011" },
            Event::ProveToken {
                token: "AAAAAAECAwQFBgcICQoL",
            },
            Event::Proved,
        ];
        for e in all {
            let bytes = e.to_bytes();
            assert_eq!(Event::decode(&bytes), Ok(e), "{e:?}");
        }
    }

    #[test]
    fn event_layouts_match_the_protocol_text() {
        let e = Event::JoinAck(ChannelInfo {
            title: "Weather",
            count: 3,
            description: "Talk about the weather",
        });
        assert_eq!(e.to_bytes(), dgram(60, b"Weather 3 Talk about the weather"));
        let e = Event::UserItem {
            nick: "bob",
            seconds: 42,
            channels: "Pets Weather",
        };
        assert_eq!(e.to_bytes(), dgram(190, b"bob 42 Pets Weather"));
    }

    #[test]
    fn part5_events_with_empty_fields_re_encode_to_themselves() {
        // Found by the `decode` fuzz target: INVITED with an empty inviter re-encoded
        // without the separator its decoder needs. Every part-5 event, with fields empty
        // in every place, must come back as itself.
        let payloads: &[&[u8]] = &[
            b"",
            b" ",
            b"  ",
            b"a",
            b"a ",
            b" a",
            b"a  b",
            b"a b ",
            b"a b c ",
            b"a  1 f",
            b"t  5 f",
            b"1 2",
            b"1  2",
            b"1 2 3 4 5",
            b"t 1 2 ",
            b"t 1 2  x",
            b"a   ",
        ];
        for &c in EVENT_CODES.iter().filter(|&&c| c >= 900) {
            for p in payloads {
                let d = dgram(c, p);
                if let Ok(e) = Event::decode(&d) {
                    let again = e.to_bytes();
                    assert_eq!(Event::decode(&again), Ok(e), "{:?} {p:?}", name(c));
                    assert!(again.len() <= d.len(), "{:?} {p:?} grew", name(c));
                }
            }
        }
        for &c in REQUEST_CODES.iter().filter(|&&c| c >= 700) {
            for p in payloads {
                let d = dgram(c, p);
                if let Ok(r) = Request::decode(&d, 1024) {
                    let again = r.to_bytes();
                    assert_eq!(Request::decode(&again, 1024), Ok(r), "{:?} {p:?}", name(c));
                    assert!(again.len() <= d.len(), "{:?} {p:?} grew", name(c));
                }
            }
        }
    }

    #[test]
    fn malformed_events_are_errors() {
        assert_eq!(
            Event::decode(&dgram(code::JOIN_ACK, b"Pets")),
            Err(DecodeError::Malformed(code::JOIN_ACK))
        );
        assert_eq!(
            Event::decode(&dgram(code::USER_ITEM, b"bob notanumber")),
            Err(DecodeError::Malformed(code::USER_ITEM))
        );
    }

    /// A payload every parser in the table accepts: enough fields, and numbers wherever a
    /// parser wants one (JOIN_ACK's count, HISTORY_MSG's id and time, ...).
    const ANY_PAYLOAD: &[u8] = b"1 2 3 4 5";

    /// A payload the parser of code `c` accepts: [`ANY_PAYLOAD`] but for the codes with a
    /// fixed form or numbers elsewhere.
    fn sample(c: u16) -> Vec<u8> {
        match c {
            code::DISCOVER => Request::Discover.to_bytes()[2..].to_vec(),
            code::MCAST_GROUP => b"Pets 239.77.0.1 2028 a2V5 1".to_vec(),
            code::SERVER_HERE => b"2027 chat at the office 12".to_vec(),
            _ => ANY_PAYLOAD.to_vec(),
        }
    }

    #[test]
    fn every_request_code_decodes_to_its_request_and_round_trips() {
        assert!(!REQUEST_CODES.is_empty());
        for &c in REQUEST_CODES {
            for payload in [sample(c), Vec::new()] {
                if c == code::DISCOVER && payload.is_empty() {
                    continue; // its payload has a fixed form
                }
                let d = dgram(c, &payload);
                let r = Request::decode(&d, 1024);
                let Ok(r) = r else {
                    panic!("{:?}: {r:?}", name(c));
                };
                assert_eq!(r.code(), c, "{r:?}");
                assert_eq!(Request::decode(&r.to_bytes(), 1024), Ok(r), "{r:?}");
            }
        }
    }

    #[test]
    fn every_event_code_decodes_to_its_event_and_round_trips() {
        assert!(!EVENT_CODES.is_empty());
        for &c in EVENT_CODES {
            let d = dgram(c, &sample(c));
            let e = Event::decode(&d);
            let Ok(e) = e else {
                panic!("{:?}: {e:?}", name(c));
            };
            assert_eq!(e.code(), c, "{e:?}");
            assert_eq!(Event::decode(&e.to_bytes()), Ok(e), "{e:?}");
        }
    }

    #[test]
    fn each_decoder_knows_only_its_own_direction() {
        for &c in ALL_CODES {
            let d = dgram(c, ANY_PAYLOAD);
            if !REQUEST_CODES.contains(&c) {
                assert_eq!(
                    Request::decode(&d, 1024),
                    Err(DecodeError::UnknownCode(c)),
                    "{:?}",
                    name(c)
                );
            }
            if !EVENT_CODES.contains(&c) {
                assert_eq!(
                    Event::decode(&d),
                    Err(DecodeError::UnknownCode(c)),
                    "{:?}",
                    name(c)
                );
            }
        }
        // The code that used to fall into each decoder's last arm.
        assert_eq!(
            Event::decode(&dgram(code::AUTH_FINISH, b"a b")),
            Err(DecodeError::UnknownCode(code::AUTH_FINISH))
        );
        assert_eq!(
            Request::decode(&dgram(code::ACCOUNT_ACK, b"a b"), 1024),
            Err(DecodeError::UnknownCode(code::ACCOUNT_ACK))
        );
        for d in [dgram(code::SEALED, b"x"), dgram(999, b"x"), dgram(0, b"")] {
            assert!(matches!(
                Request::decode(&d, 1024),
                Err(DecodeError::UnknownCode(_))
            ));
            assert!(matches!(
                Event::decode(&d),
                Err(DecodeError::UnknownCode(_))
            ));
        }
    }

    #[test]
    fn the_table_is_ascending_and_split_by_direction() {
        assert!(ALL_CODES.windows(2).all(|w| w[0] < w[1]), "{ALL_CODES:?}");
        for c in REQUEST_CODES.iter().chain(EVENT_CODES) {
            assert!(ALL_CODES.contains(c), "{c}");
        }
    }

    #[test]
    fn every_code_has_its_protocol_name() {
        let mut names = Vec::new();
        for &c in ALL_CODES {
            let n = name(c);
            assert!(
                n.is_some_and(
                    |n| !n.is_empty() && n.chars().all(|ch| ch.is_ascii_uppercase() || ch == '_')
                ),
                "{c}: {n:?}"
            );
            names.push(n);
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL_CODES.len());
        assert_eq!(name(code::LOGIN_REQ), Some("LOGIN_REQ"));
        assert_eq!(name(code::SEALED), Some("SEALED"));
        assert_eq!(name(0), None);
        assert_eq!(name(999), None);
    }

    #[test]
    fn the_codes_keep_their_numbers_and_directions() {
        // The wire values before the table; a row may be added, not renumbered or turned.
        let requests = [
            (20, "LOGIN_REQ"),
            (40, "LOGOFF"),
            (50, "JOIN_REQ"),
            (70, "PART_REQ"),
            (90, "SEND_PUBLIC"),
            (120, "SEND_PRIVATE"),
            (160, "LIST_CHANNELS"),
            (180, "LIST_USERS"),
            (200, "STILL_HERE"),
            (300, "WHO_REQ"),
            (310, "WHOIS_REQ"),
            (320, "WATCH_REQ"),
            (330, "UNWATCH_REQ"),
            (410, "REGISTER_REQ"),
            (430, "REGISTER_UPLOAD"),
            (450, "UNREGISTER_REQ"),
            (460, "AUTH_REQ"),
            (480, "AUTH_FINISH"),
            (495, "PATH_RESPONSE"),
            (1050, "PROVE_REQ"),
            (1070, "PROVE"),
        ];
        let events = [
            (10, "ERROR"),
            (30, "LOGIN_ACK"),
            (60, "JOIN_ACK"),
            (80, "PART_ACK"),
            (100, "PUBLIC_MSG"),
            (130, "PRIVATE_MSG"),
            (140, "USER_JOINS"),
            (150, "USER_PARTS"),
            (170, "CHANNEL_ITEM"),
            (190, "USER_ITEM"),
            (340, "USER_ONLINE"),
            (350, "USER_OFFLINE"),
            (420, "REGISTER_RESP"),
            (440, "ACCOUNT_ACK"),
            (470, "AUTH_CHALLENGE"),
            (485, "AUTH_RETRY"),
            (490, "PATH_CHALLENGE"),
            (1060, "PROVE_TOKEN"),
            (1080, "PROVED"),
        ];
        for (c, n) in requests {
            assert_eq!(name(c), Some(n));
            assert!(
                REQUEST_CODES.contains(&c) && !EVENT_CODES.contains(&c),
                "{n}"
            );
        }
        for (c, n) in events {
            assert_eq!(name(c), Some(n));
            assert!(
                EVENT_CODES.contains(&c) && !REQUEST_CODES.contains(&c),
                "{n}"
            );
        }
        assert_eq!(name(400), Some("SEALED"));
        assert!(!REQUEST_CODES.contains(&400) && !EVENT_CODES.contains(&400));
    }

    #[test]
    fn valid_nick_wants_a_short_word_without_controls() {
        for ok in [
            "ann",
            "Bob_2",
            "é",
            &"x".repeat(MAX_NICK_LEN),
            &"é".repeat(16),
        ] {
            assert!(valid_nick(ok), "{ok:?}");
        }
        let too_long = "x".repeat(MAX_NICK_LEN + 1);
        let too_long_wide = "é".repeat(17);
        for bad in [
            "",
            " ",
            "a b",
            "a\tb",
            "a\n",
            "\u{a0}ann",
            "a\u{0}",
            "a\u{7f}",
            "a\u{85}",
            &too_long,
            &too_long_wide,
        ] {
            assert!(!valid_nick(bad), "{bad:?}");
        }
    }

    #[test]
    fn words_skips_empty_fields() {
        assert_eq!(words(" a  b ").collect::<Vec<_>>(), vec!["a", "b"]);
    }

    #[test]
    fn push_u64_writes_decimal() {
        for n in [0u64, 7, 10, 99, 1_000_001, u64::MAX] {
            let mut v = Vec::new();
            push_u64(n, &mut v);
            assert_eq!(String::from_utf8(v).unwrap(), n.to_string());
        }
    }

    #[test]
    fn discover_is_the_word_padded_to_64_bytes() {
        let d = Request::Discover.to_bytes();
        assert_eq!(d.len(), 2 + DISCOVER_LEN);
        assert!(d[2..].starts_with(b"udpchat "));
        assert_eq!(Request::decode(&d, 1024), Ok(Request::Discover));
        let mut longer = d.clone();
        longer.extend_from_slice(b"   ");
        assert_eq!(Request::decode(&longer, 1024), Ok(Request::Discover));
        // Found by the `decode` fuzz target: a short padding decoded under a small size
        // limit, and the request re-encoded at full length no longer fit it.
        assert_eq!(
            Request::decode(&dgram(code::DISCOVER, b"udpchat  "), 16),
            Err(DecodeError::Malformed(code::DISCOVER))
        );
        assert_eq!(
            Request::decode(&dgram(code::DISCOVER, b"otherchat"), 1024),
            Err(DecodeError::Malformed(code::DISCOVER))
        );
    }

    #[test]
    fn part_4_event_layouts() {
        let e = Event::McastGroup {
            title: "Pets",
            group: "239.77.0.3",
            port: 2028,
            key: "a2V5",
            from: 41,
        };
        assert_eq!(e.to_bytes(), dgram(550, b"Pets 239.77.0.3 2028 a2V5 41"));
        assert_eq!(Event::decode(&e.to_bytes()), Ok(e));
        // The four fields of an earlier version: no `from`, malformed (the client stays
        // on unicast rather than trust a key it can't date).
        assert!(Event::decode(&dgram(550, b"Pets 239.77.0.3 2028 a2V5")).is_err());
        let e = Event::ServerHere {
            port: 2027,
            name: "the office",
            users: 3,
        };
        assert_eq!(e.to_bytes(), dgram(590, b"2027 the office 3"));
        assert_eq!(Event::decode(&e.to_bytes()), Ok(e));
        assert_eq!(
            Event::CapsAck { caps: "batch=1200" }.to_bytes(),
            dgram(510, b"batch=1200")
        );
    }
}
