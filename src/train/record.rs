//! The per-step loss log (`losses.csv`) and its plot (`losses.png`).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use plotters::prelude::*;

use crate::checkpoint::write_atomically;

/// Losses of one training step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLosses {
    pub epoch: usize,
    pub step: usize,
    /// `mean((D(clean, noisy) − 1)²)`.
    pub d_clean: f64,
    /// `mean(D(G(noisy, z), noisy)²)`.
    pub d_noisy: f64,
    /// `0.5 · mean((D(G(noisy, z), noisy) − 1)²)`.
    pub g_adversarial: f64,
    /// `l1_weight · mean(|G(noisy, z) − clean|)`.
    pub g_l1: f64,
}

impl StepLosses {
    pub fn d_loss(&self) -> f64 {
        self.d_clean + self.d_noisy
    }

    pub fn g_loss(&self) -> f64 {
        self.g_adversarial + self.g_l1
    }

    /// Returns whether every loss is finite.
    pub fn is_finite(&self) -> bool {
        [self.d_clean, self.d_noisy, self.g_adversarial, self.g_l1]
            .iter()
            .all(|loss| loss.is_finite())
    }
}

const HEADER: &str = "epoch,step,d_clean,d_noisy,d_loss,g_adversarial,g_l1,g_loss";

/// Writes the whole log atomically.
pub fn write_csv(path: &Path, rows: &[StepLosses]) -> Result<()> {
    write_atomically(path, |file| {
        writeln!(file, "{HEADER}")?;
        for row in rows {
            writeln!(
                file,
                "{},{},{},{},{},{},{},{}",
                row.epoch,
                row.step,
                row.d_clean,
                row.d_noisy,
                row.d_loss(),
                row.g_adversarial,
                row.g_l1,
                row.g_loss()
            )?;
        }
        Ok(())
    })
}

/// Reads a log written by [`write_csv`].
pub fn read_csv(path: &Path) -> Result<Vec<StepLosses>> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        bail!(
            "{}: not a loss log (expected the header {HEADER:?})",
            path.display()
        );
    }
    lines
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            parse_row(line)
                .with_context(|| format!("{}: invalid row {}", path.display(), index + 2))
        })
        .collect()
}

fn parse_row(line: &str) -> Result<StepLosses> {
    let fields: Vec<&str> = line.split(',').collect();
    if fields.len() != 8 {
        bail!("expected 8 fields, got {}", fields.len());
    }
    let loss = |index: usize| -> Result<f64> {
        let value: f64 = fields[index].trim().parse()?;
        if !value.is_finite() {
            bail!(
                "field {} is {value}; training never logs a non-finite loss",
                index + 1
            );
        }
        Ok(value)
    };
    Ok(StepLosses {
        epoch: fields[0].trim().parse()?,
        step: fields[1].trim().parse()?,
        d_clean: loss(2)?,
        d_noisy: loss(3)?,
        g_adversarial: loss(5)?,
        g_l1: loss(6)?,
    })
}

/// Plots the D and G losses against the step into a PNG, atomically.
pub fn plot(path: &Path, rows: &[StepLosses]) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    // The plotting library's axis ticks never terminate on an infinite range.
    if let Some(row) = rows.iter().find(|row| !row.is_finite()) {
        bail!(
            "cannot plot {}: epoch {} step {} has a non-finite loss",
            path.display(),
            row.epoch,
            row.step
        );
    }
    let temporary = path.with_extension("png.partial.png");
    draw(&temporary, rows)
        .map_err(|error| anyhow::anyhow!("cannot draw {}: {error}", path.display()))?;
    fs::rename(&temporary, path)
        .with_context(|| format!("cannot move the plot into {}", path.display()))?;
    Ok(())
}

fn draw(path: &Path, rows: &[StepLosses]) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;

    let d: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, r.d_loss()))
        .collect();
    let g: Vec<(f64, f64)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (i as f64, r.g_loss()))
        .collect();
    let max = d.iter().chain(&g).map(|&(_, y)| y).fold(1e-6, f64::max) * 1.05;

    let mut chart = ChartBuilder::on(&root)
        .caption("SEGAN training losses", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..(rows.len().max(2) - 1) as f64, 0f64..max)?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("loss")
        .draw()?;
    chart
        .draw_series(LineSeries::new(d, &BLUE))?
        .label("D loss")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLUE));
    chart
        .draw_series(LineSeries::new(g, &RED))?
        .label("G loss (adversarial + L1)")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], RED));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
