//! Draws the full-screen client: the buffer's lines (wrapped with an indent, scrolled,
//! mentions and search hits highlighted), the nick list beside a channel, the status line
//! (time, nickname, buffer, connection, activity) and the input line.

use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;
use unicode_width::UnicodeWidthStr;

use super::buffers::{Buffer, Buffers, Kind};
use crate::community;
use crate::session::{AskKind, Status};
use crate::text;

/// Columns of the nick list.
const NICKS_WIDTH: u16 = 16;

/// What one frame shows.
pub(super) struct View<'a> {
    pub(super) buffers: &'a Buffers,
    /// What is typed, as it may be shown (a password typed again already stars), and the
    /// cursor in it, in characters.
    pub(super) input: (&'a str, usize),
    pub(super) status: &'a Status,
    pub(super) ask: (AskKind, &'a str),
    pub(super) timestamps: bool,
    pub(super) clock: &'a str,
}

/// Draws one frame.
pub(super) fn draw(f: &mut Frame<'_>, v: &View<'_>) {
    let [main, status, input] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    let buffer = v.buffers.active();
    let with_nicks = buffer.kind == Kind::Channel && main.width >= 50;
    let (lines_area, nicks_area) = if with_nicks {
        let [l, n] =
            Layout::horizontal([Constraint::Min(20), Constraint::Length(NICKS_WIDTH)]).areas(main);
        (l, Some(n))
    } else {
        (main, None)
    };
    lines(f, lines_area, buffer, v.timestamps);
    if let Some(area) = nicks_area {
        nick_list(f, area, buffer);
    }
    status_line(f, status, v);
    input_line(f, input, v);
}

/// The rows of a buffer's lines at `width`, with the style of each and the index of the
/// line it shows.
fn rows(buffer: &Buffer, width: usize, timestamps: bool) -> Vec<(String, Style, usize)> {
    let mut out = Vec::new();
    for (i, e) in buffer.lines.iter().enumerate() {
        let stamp = if timestamps {
            format!("{} ", e.time)
        } else {
            String::new()
        };
        let style = if buffer.found == Some(i) {
            Style::default().add_modifier(Modifier::REVERSED)
        } else if e.mention {
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else if e.own && e.text.starts_with("**") {
            Style::default().fg(Color::Cyan)
        } else if !e.own && community::is_past(&e.text) {
            // History and kept messages: apart from what is said now.
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        };
        // Continuation rows start under the text, past the time and two more columns.
        let indent = stamp.width() + 2;
        for row in text::wrap(&format!("{stamp}{}", e.text), width, indent) {
            out.push((row, style, i));
        }
    }
    out
}

fn lines(f: &mut Frame<'_>, area: Rect, buffer: &Buffer, timestamps: bool) {
    let all = rows(buffer, usize::from(area.width), timestamps);
    let height = usize::from(area.height);
    let end = match buffer.found {
        // A search hit is brought to the middle of the view.
        Some(found) => {
            let last = all.iter().rposition(|r| r.2 == found).unwrap_or(0);
            (last + 1 + height / 2)
                .min(all.len())
                .max(height.min(all.len()))
        }
        None => all.len() - buffer.scroll.min(all.len().saturating_sub(height)),
    };
    let start = end.saturating_sub(height);
    let shown: Vec<Line<'_>> = all[start..end]
        .iter()
        .map(|(row, style, _)| Line::styled(row.clone(), *style))
        .collect();
    f.render_widget(Paragraph::new(shown), area);
}

fn nick_list(f: &mut Frame<'_>, area: Rect, buffer: &Buffer) {
    let height = usize::from(area.height.saturating_sub(1));
    let mut names: Vec<Line<'_>> = buffer
        .nicks
        .iter()
        .take(height)
        .map(|n| Line::raw(n.clone()))
        .collect();
    if buffer.nicks.len() > height && height > 0 {
        names.pop();
        names.push(Line::raw(format!(
            "+{} more",
            buffer.nicks.len() - height + 1
        )));
    }
    let title = format!("{} users", buffer.nicks.len());
    f.render_widget(
        Paragraph::new(names).block(Block::default().borders(Borders::LEFT).title(title)),
        area,
    );
}

fn status_line(f: &mut Frame<'_>, area: Rect, v: &View<'_>) {
    let buffer = v.buffers.active();
    let number = v.buffers.active + 1;
    let nick = v.status.nick.as_deref().unwrap_or("-");
    let mut spans = vec![
        Span::raw(format!(" {} ", v.clock)),
        Span::raw(format!("[{nick}] ")),
        Span::raw(format!("[{number}:{}] ", buffer.name)),
    ];
    if let (Kind::Status, Some(channel)) = (&buffer.kind, &v.status.channel) {
        spans.push(Span::raw(format!("[in {channel}] ")));
    }
    let conn_style = if v.status.conn == "connected" {
        Style::default()
    } else {
        Style::default()
            .fg(Color::LightRed)
            .add_modifier(Modifier::BOLD)
    };
    spans.push(Span::styled(format!("[{}]", v.status.conn), conn_style));
    let activity = v.buffers.activity();
    if !activity.is_empty() {
        spans.push(Span::raw(" [Act: "));
        for (n, (i, mention)) in activity.iter().enumerate() {
            if n > 0 {
                spans.push(Span::raw(","));
            }
            let (label, style) = if *mention {
                (
                    format!("{i}!"),
                    Style::default()
                        .fg(Color::LightYellow)
                        .add_modifier(Modifier::BOLD),
                )
            } else {
                (i.to_string(), Style::default().add_modifier(Modifier::BOLD))
            };
            spans.push(Span::styled(label, style));
        }
        spans.push(Span::raw("]"));
    }
    if buffer.scroll > 0 || buffer.found.is_some() {
        spans.push(Span::raw(" -- more --"));
    }
    f.render_widget(
        Paragraph::new(Line::from(spans)).style(Style::default().bg(Color::Blue).fg(Color::White)),
        area,
    );
}

fn input_line(f: &mut Frame<'_>, area: Rect, v: &View<'_>) {
    let (kind, prompt) = v.ask;
    let prompt = match kind {
        AskKind::Chat => format!("[{}] ", v.buffers.active().name),
        _ => prompt.to_string(),
    };
    let (typed, cursor) = v.input;
    let text: String = match kind {
        // A password shows as stars: its length, never its characters.
        AskKind::Secret => "*".repeat(typed.chars().count()),
        // A line end inside a paste shows as a mark on the one input row.
        _ => typed.replace('\n', "⏎"),
    };
    let before: String = text.chars().take(cursor).collect();
    let width = usize::from(area.width);
    let cursor_col = prompt.width() + before.width();
    // Long input scrolls sideways so the cursor stays in view.
    let skip = (cursor_col + 1).saturating_sub(width);
    let full = format!("{prompt}{text}");
    let mut cols = 0;
    let visible: String = full
        .chars()
        .skip_while(|c| {
            let w = unicode_width::UnicodeWidthChar::width(*c).unwrap_or(0);
            let skipping = cols < skip;
            if skipping {
                cols += w;
            }
            skipping
        })
        .collect();
    let style = if kind == AskKind::Chat {
        Style::default()
    } else {
        Style::default().add_modifier(Modifier::BOLD)
    };
    f.render_widget(Paragraph::new(Line::styled(visible, style)), area);
    let x = area.x + u16::try_from(cursor_col - cols.min(cursor_col)).unwrap_or(area.width);
    f.set_cursor_position(Position::new(x.min(area.right().saturating_sub(1)), area.y));
}
