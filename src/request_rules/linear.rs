//! Multinomial logistic regression (softmax) over sparse named features:
//! the learner behind the reason and email-access readings.
//!
//! Written by hand, on purpose: the training data is a few hundred
//! requests and some tens of thousands of features, which full-batch
//! gradient descent fits in a second; an ML crate would bring far more
//! than this needs and make the committed weights depend on its version.
//!
//! Training is deterministic: examples are visited in the order given,
//! features are indexed in sorted order, the step and the number of
//! epochs are fixed, so the same examples always give the same file. The
//! weights are written as a TSV (`Linear::write`) and read back with
//! `Linear::parse`, which never fails: a damaged line is skipped.

use std::collections::{BTreeMap, HashMap};

/// A text's features: name → value (see the callers for the names).
pub type Features = BTreeMap<String, f64>;

/// One labelled example.
#[derive(Debug, Clone)]
pub struct Example {
    /// Its features, as the reader computes them.
    pub features: Features,
    /// The class index.
    pub class: usize,
    /// How much it counts (a hand-written seed counts more than one request).
    pub weight: f64,
    /// A seed keeps its features even when no other example has them.
    pub seed: bool,
}

/// The training knobs (chosen by cross-validation; see the callers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// L2 penalty on the weights (not the biases), per unit of example weight.
    pub l2: f64,
    /// Full-batch gradient steps.
    pub epochs: usize,
    /// Gradient step size.
    pub step: f64,
    /// A non-seed feature must occur in this many examples to be learnt:
    /// names, usernames and one-off typos never reach the weights.
    pub min_docs: usize,
    /// Weights smaller than this are dropped from the written file.
    pub prune: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            l2: 1e-3,
            epochs: 300,
            step: 1.0,
            min_docs: 2,
            prune: 2e-3,
        }
    }
}

/// A trained model: per-class biases and per-feature weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Linear {
    classes: usize,
    bias: Vec<f64>,
    weights: HashMap<String, Vec<f64>>,
    /// `=key\tvalue` lines of the file other than the bias: settings the
    /// reader must use as the trainer did.
    meta: BTreeMap<String, String>,
}

/// Scales a feature vector to unit length, so a long request and a short
/// one speak equally loudly and one step size fits every example.
pub fn normalise(features: &mut Features) {
    let norm = features.values().map(|v| v * v).sum::<f64>().sqrt();
    if norm > 0.0 {
        for v in features.values_mut() {
            *v /= norm;
        }
    }
}

/// `ln softmax(z)`.
fn log_softmax(z: &mut [f64]) {
    let top = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let norm = top + z.iter().map(|s| (s - top).exp()).sum::<f64>().ln();
    for s in z.iter_mut() {
        *s -= norm;
    }
}

/// The examples as index lists over a sorted vocabulary.
struct Indexed {
    vocab: Vec<String>,
    rows: Vec<Vec<(usize, f64)>>,
}

fn index(examples: &[Example], min_docs: usize) -> Indexed {
    let mut df: BTreeMap<&str, (usize, bool)> = BTreeMap::new();
    for e in examples {
        for f in e.features.keys() {
            let d = df.entry(f.as_str()).or_default();
            d.0 += 1;
            d.1 |= e.seed;
        }
    }
    let vocab: Vec<String> = df
        .into_iter()
        .filter(|(_, (n, seed))| *n >= min_docs || *seed)
        .map(|(f, _)| f.to_string())
        .collect();
    let at: HashMap<&str, usize> = vocab
        .iter()
        .enumerate()
        .map(|(i, f)| (f.as_str(), i))
        .collect();
    let rows = examples
        .iter()
        .map(|e| {
            e.features
                .iter()
                .filter_map(|(f, v)| at.get(f.as_str()).map(|i| (*i, *v)))
                .collect()
        })
        .collect();
    Indexed { vocab, rows }
}

impl Linear {
    /// Fits a model to the examples: full-batch gradient descent with
    /// Nesterov momentum on the weighted mean cross-entropy plus the L2
    /// penalty. Examples whose class is out of range are ignored.
    pub fn train(examples: &[Example], classes: usize, cfg: &TrainConfig) -> Linear {
        let examples: Vec<Example> = examples
            .iter()
            .filter(|e| e.class < classes && e.weight > 0.0)
            .cloned()
            .collect();
        let ix = index(&examples, cfg.min_docs);
        let k = classes;
        let n_feat = ix.vocab.len();
        let total: f64 = examples.iter().map(|e| e.weight).sum::<f64>().max(1e-9);
        let mut w = vec![0.0f64; n_feat * k];
        let mut b = vec![0.0f64; k];
        let (mut vw, mut vb) = (vec![0.0f64; n_feat * k], vec![0.0f64; k]);
        let momentum = 0.9;
        for _ in 0..cfg.epochs {
            // Nesterov: the gradient is taken at the look-ahead point.
            let look_w: Vec<f64> = w.iter().zip(&vw).map(|(w, v)| w + momentum * v).collect();
            let look_b: Vec<f64> = b.iter().zip(&vb).map(|(b, v)| b + momentum * v).collect();
            let mut gw: Vec<f64> = look_w.iter().map(|w| cfg.l2 * w).collect();
            let mut gb = vec![0.0f64; k];
            let mut z = vec![0.0f64; k];
            for (e, row) in examples.iter().zip(&ix.rows) {
                z.copy_from_slice(&look_b);
                for &(i, x) in row {
                    for (c, zc) in z.iter_mut().enumerate() {
                        *zc += look_w[i * k + c] * x;
                    }
                }
                log_softmax(&mut z);
                let scale = e.weight / total;
                for c in 0..k {
                    let g = (z[c].exp() - f64::from(u8::from(c == e.class))) * scale;
                    gb[c] += g;
                    for &(i, x) in row {
                        gw[i * k + c] += g * x;
                    }
                }
            }
            for ((w, v), g) in w.iter_mut().zip(vw.iter_mut()).zip(&gw) {
                *v = momentum * *v - cfg.step * g;
                *w += *v;
            }
            for ((b, v), g) in b.iter_mut().zip(vb.iter_mut()).zip(&gb) {
                *v = momentum * *v - cfg.step * g;
                *b += *v;
            }
        }
        let weights = ix
            .vocab
            .into_iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let row: Vec<f64> = w[i * k..(i + 1) * k].to_vec();
                row.iter().any(|x| x.abs() >= cfg.prune).then_some((f, row))
            })
            .collect();
        Linear {
            classes,
            bias: b,
            weights,
            meta: BTreeMap::new(),
        }
    }

    /// Records a setting the reader must apply as the trainer did; it is
    /// written with the weights.
    pub fn set_meta(&mut self, key: &str, value: &str) {
        self.meta.insert(key.to_string(), value.to_string());
    }

    /// A setting written with the weights.
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta.get(key).map(String::as_str)
    }

    /// True when nothing was learnt (an absent or damaged file).
    pub fn is_empty(&self) -> bool {
        self.weights.is_empty()
    }

    /// How many features carry a weight.
    pub fn len(&self) -> usize {
        self.weights.len()
    }

    /// The log-probability of every class for a (normalised) feature
    /// vector; `None` when the model knows none of its features.
    pub fn log_probs(&self, features: &Features) -> Option<Vec<f64>> {
        if self.classes == 0 {
            return None;
        }
        let mut z = self.bias.clone();
        let mut known = 0;
        for (f, x) in features {
            if let Some(w) = self.weights.get(f) {
                known += 1;
                for (zc, wc) in z.iter_mut().zip(w) {
                    *zc += wc * x;
                }
            }
        }
        if known == 0 {
            return None;
        }
        log_softmax(&mut z);
        Some(z)
    }

    /// The model as a TSV file: `header` lines (each given a `# `), the
    /// settings, the biases, then one row per feature, sorted.
    pub fn write(&self, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            out.push_str(&format!("# {line}\n"));
        }
        for (key, value) in &self.meta {
            out.push_str(&format!("={key}\t{value}\n"));
        }
        let row = |out: &mut String, key: &str, values: &[f64]| {
            out.push_str(key);
            for v in values {
                // Four decimals: the reading moves by far less than the
                // margins it is compared with, and the file stays small.
                let v = if v.abs() < 5e-5 { 0.0 } else { *v };
                out.push_str(&format!("\t{v:.4}"));
            }
            out.push('\n');
        };
        row(&mut out, "=bias", &self.bias);
        let mut keys: Vec<&String> = self.weights.keys().collect();
        keys.sort();
        for key in keys {
            row(&mut out, key, &self.weights[key]);
        }
        out
    }

    /// Reads a file [`Linear::write`] wrote for `classes` classes; a line
    /// that does not parse is skipped, so a damaged file is a smaller
    /// model, never an error.
    pub fn parse(text: &str, classes: usize) -> Linear {
        let mut model = Linear {
            classes,
            bias: vec![0.0; classes],
            ..Linear::default()
        };
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let mut cols = line.split('\t');
            let key = cols.next().unwrap_or("");
            let rest: Vec<&str> = cols.collect();
            if key.is_empty() {
                continue;
            }
            if key != "=bias" && key.starts_with('=') && rest.len() == 1 {
                model.meta.insert(key[1..].to_string(), rest[0].to_string());
                continue;
            }
            let values: Vec<f64> = rest
                .iter()
                .filter_map(|v| v.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
                .collect();
            if values.len() != classes || rest.len() != classes {
                continue;
            }
            if key == "=bias" {
                model.bias = values;
            } else {
                model.weights.insert(key.to_string(), values);
            }
        }
        model
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(words: &[&str], class: usize) -> Example {
        let mut features: Features = words.iter().map(|w| (w.to_string(), 1.0)).collect();
        normalise(&mut features);
        Example {
            features,
            class,
            weight: 1.0,
            seed: false,
        }
    }

    fn tiny() -> Vec<Example> {
        vec![
            ex(&["phone", "lost"], 0),
            ex(&["phone", "broke"], 0),
            ex(&["password", "forgot"], 1),
            ex(&["password", "lost"], 1),
        ]
    }

    #[test]
    fn it_learns_a_separable_set_and_reads_it_back_from_its_file() {
        let m = Linear::train(&tiny(), 2, &TrainConfig::default());
        let read = Linear::parse(&m.write("test model"), 2);
        for (words, want) in [(&["phone"][..], 0), (&["password", "lost"][..], 1)] {
            let mut f: Features = words.iter().map(|w| (w.to_string(), 1.0)).collect();
            normalise(&mut f);
            let trained = m.log_probs(&f).expect("known");
            let parsed = read.log_probs(&f).expect("known");
            let best = (0..2).max_by(|a, b| trained[*a].total_cmp(&trained[*b]));
            assert_eq!(best, Some(want), "{words:?}");
            for (a, b) in trained.iter().zip(&parsed) {
                assert!((a - b).abs() < 1e-3, "{a} vs {b}");
            }
        }
        // A feature in one example only is not learnt.
        let f: Features = [("broke".to_string(), 1.0)].into();
        assert_eq!(m.log_probs(&f), None);
    }

    #[test]
    fn training_is_deterministic() {
        let cfg = TrainConfig::default();
        let a = Linear::train(&tiny(), 2, &cfg).write("");
        let b = Linear::train(&tiny(), 2, &cfg).write("");
        assert_eq!(a, b);
    }

    #[test]
    fn a_damaged_file_is_a_smaller_model() {
        let m = Linear::parse("=bias\t1\t2\nw:x\tnan\t1\nw:y\t1\nw:z\t0.5\t-0.5\n\u{0}", 2);
        assert_eq!(m.len(), 1);
        assert_eq!(Linear::parse("", 0).log_probs(&Features::new()), None);
    }
}
