//! `celeriac top`: a live terminal view of queues and workers, like `asynq dash`. Every
//! interval it reads `GET /queues` and `GET /workers` and redraws (ratatui); a failed refresh
//! keeps the last data on screen with the error underneath. `q`, Esc or Ctrl-C quits.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};
use tokio::runtime::Runtime;

use crate::client::Gateway;
use crate::commands::{queues, workers};
use crate::error::CliError;
use crate::model::{Queue, Worker, read};

/// What the screen shows.
#[derive(Debug, Default)]
struct Screen {
    queues: Vec<Queue>,
    workers: Vec<Worker>,
    /// Why the last refresh failed, if it did.
    error: Option<String>,
    refreshes: u64,
}

pub fn run(runtime: &Runtime, gateway: &Gateway, interval: Duration) -> Result<(), CliError> {
    if !std::io::stdout().is_terminal() {
        return Err(CliError::Usage("top draws on a terminal: stdout is not one".into()));
    }
    let mut terminal = ratatui::try_init().map_err(|e| CliError::Usage(format!("cannot take over the terminal: {e}")))?;
    let result = watch(&mut terminal, runtime, gateway, interval);
    ratatui::restore();
    result.map_err(|e| CliError::Usage(format!("terminal error: {e}")))
}

fn watch(terminal: &mut DefaultTerminal, runtime: &Runtime, gateway: &Gateway, interval: Duration) -> std::io::Result<()> {
    let mut screen = Screen::default();
    let mut next_refresh = Instant::now();
    loop {
        if Instant::now() >= next_refresh {
            refresh(&mut screen, runtime.block_on(fetch(gateway)));
            next_refresh = Instant::now() + interval;
            terminal.draw(|frame| draw(frame, &screen, gateway.base(), interval))?;
        }
        if !event::poll(next_refresh.saturating_duration_since(Instant::now()))? {
            continue;
        }
        match event::read()? {
            Event::Key(key) if key.kind == KeyEventKind::Press => {
                let ctrl_c = key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                    return Ok(());
                }
            }
            Event::Resize(..) => {
                terminal.draw(|frame| draw(frame, &screen, gateway.base(), interval))?;
            }
            _ => {}
        }
    }
}

async fn fetch(gateway: &Gateway) -> Result<(Vec<Queue>, Vec<Worker>), CliError> {
    let (queues, workers) = tokio::join!(gateway.get(&["queues"], &[]), gateway.get(&["workers"], &[]));
    Ok((read(&queues?["queues"], "queue list")?, read(&workers?["workers"], "worker list")?))
}

fn refresh(screen: &mut Screen, fetched: Result<(Vec<Queue>, Vec<Worker>), CliError>) {
    screen.refreshes += 1;
    match fetched {
        Ok((queues, workers)) => {
            screen.queues = queues;
            screen.workers = workers;
            screen.error = None;
        }
        Err(e) => screen.error = Some(e.to_string()),
    }
}

fn draw(frame: &mut Frame, screen: &Screen, base: &str, interval: Duration) {
    let [title, queue_area, worker_area, status] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(4), Constraint::Min(4), Constraint::Length(1)]).areas(frame.area());
    let heading = format!(
        "celeriac top  {base}  every {:.1}s  refresh #{}  (q quits)",
        interval.as_secs_f64(),
        screen.refreshes
    );
    frame.render_widget(Paragraph::new(heading).style(Style::new().add_modifier(Modifier::BOLD)), title);
    let queue_rows: Vec<Vec<String>> = screen.queues.iter().map(queues::table_row).collect();
    let title = format!("Queues ({})", screen.queues.len());
    frame.render_widget(table(queues::table_header(), &queue_rows, title), queue_area);
    let worker_rows: Vec<Vec<String>> = screen.workers.iter().map(workers::table_row).collect();
    let title = format!("Workers ({})", screen.workers.len());
    frame.render_widget(table(workers::table_header(), &worker_rows, title), worker_area);
    let (line, style) = match &screen.error {
        Some(error) => (format!("refresh failed: {error}"), Style::new().fg(Color::Red)),
        None => ("ok".to_owned(), Style::new().fg(Color::Green)),
    };
    frame.render_widget(Paragraph::new(line).style(style), status);
}

/// A bordered table whose columns are as wide as their widest cell.
fn table<'a>(header: Vec<&'static str>, rows: &'a [Vec<String>], title: String) -> Table<'a> {
    let widths: Vec<Constraint> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let widest = rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0);
            Constraint::Length(widest.max(h.len()) as u16)
        })
        .collect();
    let rows = rows.iter().map(|r| Row::new(r.iter().map(String::as_str)));
    Table::new(rows, widths)
        .header(Row::new(header).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(Block::bordered().title(title))
}
