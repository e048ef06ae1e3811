//! Anomaly detection over a series of numbers with plain statistics (z-score and EWMA).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::DevopsError;

/// Longest series accepted, to bound memory and response size.
pub const MAX_VALUES: usize = 1_000_000;
/// Anomalies listed in a report; the total is always counted.
pub const MAX_REPORTED_ANOMALIES: usize = 1_000;
/// Default threshold, in standard deviations, for both methods.
pub const DEFAULT_THRESHOLD: f64 = 3.0;
/// Default smoothing factor of the EWMA method.
pub const DEFAULT_EWMA_ALPHA: f64 = 0.3;
/// Points the EWMA sees before it may flag anything: its variance estimate needs a history.
pub const EWMA_WARMUP: usize = 5;

/// How points are scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnomalyMethod {
    /// Distance from the mean of the whole series in population standard deviations.
    Zscore,
    /// Distance from an exponentially weighted moving average, in standard deviations of the
    /// exponentially weighted moving variance before the point: follows trends and drift.
    Ewma,
}

/// One point whose score exceeded the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Anomaly {
    /// Position in the input series (0-based).
    pub index: usize,
    pub value: f64,
    /// Distance from the expected value in standard deviations.
    pub score: f64,
}

/// The result of scoring a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AnomalyReport {
    pub method: AnomalyMethod,
    pub threshold: f64,
    /// Number of input values.
    pub count: usize,
    /// Mean of the series (z-score) or final moving average (EWMA).
    pub mean: f64,
    /// Standard deviation of the series (z-score) or final moving standard deviation (EWMA).
    pub std_dev: f64,
    /// Smoothing factor used (EWMA only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    /// Number of anomalous points, including any beyond the listed ones.
    pub anomaly_count: usize,
    /// Anomalous points in input order, at most `MAX_REPORTED_ANOMALIES`.
    pub anomalies: Vec<Anomaly>,
    /// Why the result may not be what was expected (flat series, too few points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Scores `values` and returns the points whose score is above `threshold`.
pub fn detect_anomalies(
    values: &[f64],
    method: AnomalyMethod,
    threshold: Option<f64>,
    alpha: Option<f64>,
) -> Result<AnomalyReport, DevopsError> {
    if values.len() < 2 {
        return Err(DevopsError::invalid(format!(
            "values has {} number(s); pass at least 2 to score anything",
            values.len()
        )));
    }
    if values.len() > MAX_VALUES {
        return Err(DevopsError::invalid(format!(
            "values has {} numbers; at most {MAX_VALUES} are accepted, downsample or split the series",
            values.len()
        )));
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(DevopsError::invalid(format!(
            "values[{index}] is not a finite number; remove NaN and infinite values"
        )));
    }
    let threshold = threshold.unwrap_or(DEFAULT_THRESHOLD);
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(DevopsError::invalid(format!(
            "threshold {threshold} is not a positive number of standard deviations (try 3)"
        )));
    }
    match method {
        AnomalyMethod::Zscore => {
            if alpha.is_some() {
                return Err(DevopsError::invalid(
                    "alpha only applies to method \"ewma\"; remove it or switch method",
                ));
            }
            Ok(zscore(values, threshold))
        }
        AnomalyMethod::Ewma => {
            let alpha = alpha.unwrap_or(DEFAULT_EWMA_ALPHA);
            if !(alpha > 0.0 && alpha <= 1.0) {
                return Err(DevopsError::invalid(format!(
                    "alpha {alpha} is outside (0, 1]; small values smooth more (try 0.3)"
                )));
            }
            Ok(ewma(values, threshold, alpha))
        }
    }
}

fn zscore(values: &[f64], threshold: f64) -> AnomalyReport {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let std_dev = variance.sqrt();
    let mut collector = Collector::default();
    let mut note = None;
    if std_dev == 0.0 {
        note = Some("all values are equal, so no point deviates from the mean".to_owned());
    } else {
        for (index, &value) in values.iter().enumerate() {
            collector.score(index, value, (value - mean).abs() / std_dev, threshold);
        }
        // With n points no z-score can exceed (n-1)/sqrt(n); say so instead of silently
        // returning nothing for short series.
        let max_possible = (n - 1.0) / n.sqrt();
        if max_possible <= threshold {
            note = Some(format!(
                "with {} values no z-score can exceed {max_possible:.2}, which is not above the \
                 threshold {threshold}; pass more values or lower the threshold",
                values.len()
            ));
        }
    }
    collector.into_report(
        AnomalyMethod::Zscore,
        threshold,
        values.len(),
        mean,
        std_dev,
        None,
        note,
    )
}

fn ewma(values: &[f64], threshold: f64, alpha: f64) -> AnomalyReport {
    let mut mean = values[0];
    let mut variance = 0.0_f64;
    let mut collector = Collector::default();
    for (index, &value) in values.iter().enumerate().skip(1) {
        let diff = value - mean;
        if index >= EWMA_WARMUP {
            // A perfectly flat history has zero variance; a tiny scale-aware floor keeps the
            // score finite while still flagging the first departure from it.
            let std_dev = variance.sqrt().max(1e-9 * mean.abs().max(1.0));
            collector.score(index, value, diff.abs() / std_dev, threshold);
        }
        let increment = alpha * diff;
        mean += increment;
        variance = (1.0 - alpha) * (variance + diff * increment);
    }
    let note = (values.len() <= EWMA_WARMUP).then(|| {
        format!("the first {EWMA_WARMUP} points only train the moving average; pass more values")
    });
    collector.into_report(
        AnomalyMethod::Ewma,
        threshold,
        values.len(),
        mean,
        variance.sqrt(),
        Some(alpha),
        note,
    )
}

#[derive(Default)]
struct Collector {
    anomalies: Vec<Anomaly>,
    count: usize,
}

impl Collector {
    fn score(&mut self, index: usize, value: f64, score: f64, threshold: f64) {
        if score > threshold {
            self.count += 1;
            if self.anomalies.len() < MAX_REPORTED_ANOMALIES {
                self.anomalies.push(Anomaly {
                    index,
                    value,
                    score: round3(score),
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn into_report(
        self,
        method: AnomalyMethod,
        threshold: f64,
        count: usize,
        mean: f64,
        std_dev: f64,
        alpha: Option<f64>,
        note: Option<String>,
    ) -> AnomalyReport {
        AnomalyReport {
            method,
            threshold,
            count,
            mean,
            std_dev,
            alpha,
            anomaly_count: self.count,
            anomalies: self.anomalies,
            note,
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn indexes(report: &AnomalyReport) -> Vec<usize> {
        report.anomalies.iter().map(|a| a.index).collect()
    }

    #[test]
    fn zscore_flags_the_spike_only() {
        let mut values = vec![10.0; 50];
        for (i, v) in values.iter_mut().enumerate() {
            *v += (i % 3) as f64 * 0.5;
        }
        values[37] = 40.0;
        let report = detect_anomalies(&values, AnomalyMethod::Zscore, None, None).unwrap();
        assert_eq!(indexes(&report), vec![37]);
        assert_eq!(report.anomaly_count, 1);
        assert!(report.anomalies[0].score > 6.0, "{report:?}");
        assert!(report.note.is_none());
    }

    #[test]
    fn zscore_score_matches_hand_computation() {
        // mean 2, population std sqrt(2): |5-2|/sqrt(2) = 2.121
        let values = [1.0, 1.0, 1.0, 1.0, 5.0];
        let report = detect_anomalies(&values, AnomalyMethod::Zscore, Some(1.5), None).unwrap();
        assert_eq!(report.mean, 1.8);
        assert_eq!(indexes(&report), vec![4]);
        assert!((report.anomalies[0].score - 2.0).abs() < 1e-3, "{report:?}");
    }

    #[test]
    fn zscore_flat_series_has_no_anomalies_and_says_why() {
        let report = detect_anomalies(&[3.0; 10], AnomalyMethod::Zscore, None, None).unwrap();
        assert!(report.anomalies.is_empty());
        assert!(report.note.unwrap().contains("equal"));
    }

    #[test]
    fn zscore_short_series_explains_unreachable_threshold() {
        let report =
            detect_anomalies(&[1.0, 1.0, 1.0, 100.0], AnomalyMethod::Zscore, None, None).unwrap();
        assert!(report.anomalies.is_empty());
        assert!(report.note.unwrap().contains("no z-score can exceed"));
    }

    #[test]
    fn ewma_follows_a_trend_but_flags_a_jump() {
        // A steady ramp is not anomalous for EWMA; a sudden jump on top of it is.
        let mut values: Vec<f64> = (0..60).map(|i| i as f64 + (i % 2) as f64 * 0.3).collect();
        values[45] += 30.0;
        let report = detect_anomalies(&values, AnomalyMethod::Ewma, None, None).unwrap();
        assert_eq!(indexes(&report), vec![45], "{report:?}");
        assert_eq!(report.alpha, Some(DEFAULT_EWMA_ALPHA));
        // The same ramp scored globally flags nothing: the jump hides in the trend's spread.
        let global = detect_anomalies(&values, AnomalyMethod::Zscore, None, None).unwrap();
        assert!(global.anomalies.is_empty(), "{global:?}");
    }

    #[test]
    fn ewma_flags_departure_from_flat_history() {
        let mut values = vec![5.0; 20];
        values[12] = 6.0;
        let report = detect_anomalies(&values, AnomalyMethod::Ewma, None, None).unwrap();
        assert_eq!(indexes(&report)[0], 12);
    }

    #[test]
    fn ewma_warmup_points_are_never_flagged() {
        let values = [1.0, 50.0, 1.0, 50.0, 1.0];
        let report = detect_anomalies(&values, AnomalyMethod::Ewma, None, None).unwrap();
        assert!(report.anomalies.is_empty());
        assert!(report.note.is_some());
    }

    #[test]
    fn rejects_bad_input_with_clear_messages() {
        let err = detect_anomalies(&[1.0], AnomalyMethod::Zscore, None, None).unwrap_err();
        assert!(err.to_string().contains("at least 2"));
        let err =
            detect_anomalies(&[1.0, f64::NAN], AnomalyMethod::Zscore, None, None).unwrap_err();
        assert!(err.to_string().contains("values[1]"));
        let err =
            detect_anomalies(&[1.0, 2.0], AnomalyMethod::Zscore, Some(0.0), None).unwrap_err();
        assert!(err.to_string().contains("threshold"));
        let err = detect_anomalies(&[1.0, 2.0], AnomalyMethod::Ewma, None, Some(1.5)).unwrap_err();
        assert!(err.to_string().contains("alpha"));
        let err =
            detect_anomalies(&[1.0, 2.0], AnomalyMethod::Zscore, None, Some(0.5)).unwrap_err();
        assert!(err.to_string().contains("ewma"));
    }

    #[test]
    fn reported_anomalies_are_capped_but_counted() {
        let values: Vec<f64> = (0..10_000)
            .map(|i| if i % 4 == 0 { 100.0 } else { 0.0 })
            .collect();
        let report = detect_anomalies(&values, AnomalyMethod::Zscore, Some(1.0), None).unwrap();
        assert_eq!(report.anomaly_count, 2_500);
        assert_eq!(report.anomalies.len(), MAX_REPORTED_ANOMALIES);
    }
}
