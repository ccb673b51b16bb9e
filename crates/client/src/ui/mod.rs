//! The client's interfaces: [`line`], the classic line mode (the editor, a plain terminal,
//! scripts), and [`tui`], the full-screen client. Both show the same
//! [`Out`](crate::session::Out)put of the session and send it what is typed.

pub(crate) mod inline;
pub(crate) mod input;
pub(crate) mod line;
pub(crate) mod prompt;
pub(crate) mod tui;
