//! [`Propagation`]: the variables that cross process boundaries, as text pairs.

use std::error::Error;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::context::Context;
use crate::var::ContextVar;

/// The variables that leave the process with a job or a request, and how they travel: as text
/// pairs (name, value), each written with the variable's `Display` and read back with its
/// `FromStr`. The same pairs are what an HTTP integration sends as W3C `baggage`.
///
/// Variables not listed never leave the process. Importing checks everything before building
/// anything: a bad entry gives a typed [`ImportProblem`], and no half-built context comes back.
/// Entries under names no listed variable has are ignored (other systems' baggage).
///
/// ```
/// use ctxflow::{Context, ContextVar, Propagation};
///
/// static TENANT: ContextVar<String> = ContextVar::new("tenant");
/// static PRIORITY: ContextVar<u8> = ContextVar::new("priority");
/// static DB_SESSION: ContextVar<u64> = ContextVar::new("db_session");
///
/// let propagation = Propagation::new().var(&TENANT).var(&PRIORITY);
///
/// let here = Context::empty()
///     .with_value(&TENANT, "acme".to_string())
///     .with_value(&PRIORITY, 3)
///     .with_value(&DB_SESSION, 99);
/// let pairs = propagation.export(&here);
/// assert_eq!(pairs, [("priority".to_string(), "3".to_string()), ("tenant".into(), "acme".into())]);
///
/// // ...in the other process:
/// let there = propagation
///     .import(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
///     .unwrap();
/// assert_eq!(there.get(&TENANT).map(String::as_str), Some("acme"));
/// assert_eq!(there.get(&PRIORITY), Some(&3));
/// assert_eq!(there.get(&DB_SESSION), None);
///
/// let error = propagation.import([("priority", "high")]).unwrap_err();
/// assert_eq!(error.to_string(), "cannot import context: `priority`: invalid digit found in string");
/// ```
#[derive(Clone)]
pub struct Propagation {
    /// Sorted by name, so exports come out in a stable order.
    codecs: Vec<Arc<dyn Codec>>,
    max_entries: usize,
    max_bytes: usize,
}

/// W3C baggage's limits: 64 entries, 8192 bytes.
const DEFAULT_MAX_ENTRIES: usize = 64;
const DEFAULT_MAX_BYTES: usize = 8192;

impl Default for Propagation {
    fn default() -> Self {
        Propagation::new()
    }
}

impl Propagation {
    /// Nothing crosses yet; at most 64 entries and 8192 bytes are imported.
    pub fn new() -> Self {
        Propagation {
            codecs: Vec::new(),
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }

    /// Lets `var` cross, under its name.
    ///
    /// # Panics
    /// When another listed variable has the same name: the receiving side could not tell them
    /// apart.
    pub fn var<T>(mut self, var: &'static ContextVar<T>) -> Self
    where
        T: fmt::Display + FromStr + Send + Sync + 'static,
        T::Err: fmt::Display,
    {
        let name = var.name();
        let index = match self.codecs.binary_search_by(|codec| codec.name().cmp(name)) {
            Ok(_) => panic!("ctxflow: two variables named `{name}` cannot both cross processes"),
            Err(index) => index,
        };
        self.codecs.insert(index, Arc::new(TextCodec(var)));
        self
    }

    /// At most `max` entries are imported; more is an error.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max;
        self
    }

    /// At most `max` bytes of names and values are imported; more is an error.
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// The names of the listed variables, sorted: the entries this propagation owns in a
    /// carrier that other systems write to as well, such as W3C `baggage`.
    ///
    /// ```
    /// use ctxflow::{ContextVar, Propagation};
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    /// static PRIORITY: ContextVar<u8> = ContextVar::new("priority");
    /// let propagation = Propagation::new().var(&TENANT).var(&PRIORITY);
    /// assert_eq!(propagation.names().collect::<Vec<_>>(), ["priority", "tenant"]);
    /// assert!(propagation.lists("tenant"));
    /// assert!(!propagation.lists("user_id"));
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.codecs.iter().map(|codec| codec.name())
    }

    /// Whether a variable named `name` is listed.
    ///
    /// ```
    /// use ctxflow::{ContextVar, Propagation};
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    /// assert!(Propagation::new().var(&TENANT).lists("tenant"));
    /// ```
    pub fn lists(&self, name: &str) -> bool {
        self.codecs
            .binary_search_by(|codec| codec.name().cmp(name))
            .is_ok()
    }

    /// Whether no variable is listed: nothing crosses.
    ///
    /// ```
    /// use ctxflow::{ContextVar, Propagation};
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    /// assert!(Propagation::new().is_empty());
    /// assert!(!Propagation::new().var(&TENANT).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.codecs.is_empty()
    }

    /// The listed variables set in `context`, as (name, value) pairs sorted by name.
    pub fn export(&self, context: &Context) -> Vec<(String, String)> {
        self.codecs
            .iter()
            .filter_map(|codec| Some((codec.name().to_string(), codec.export(context)?)))
            .collect()
    }

    /// [`export`](Self::export) of the current context.
    ///
    /// ```
    /// use ctxflow::{ContextVar, Propagation};
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    /// let _token = TENANT.set("acme".into());
    /// let pairs = Propagation::new().var(&TENANT).export_current();
    /// assert_eq!(pairs, [("tenant".to_string(), "acme".to_string())]);
    /// ```
    pub fn export_current(&self) -> Vec<(String, String)> {
        self.export(&Context::current())
    }

    /// A fresh context holding the listed variables found in `pairs`, or every problem found.
    pub fn import<'a, I>(&self, pairs: I) -> Result<Context, ImportError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let pairs: Vec<(&str, &str)> = pairs.into_iter().collect();
        let mut problems = Vec::new();
        if pairs.len() > self.max_entries {
            problems.push(ImportProblem::TooManyEntries {
                count: pairs.len(),
                max: self.max_entries,
            });
        }
        let bytes: usize = pairs
            .iter()
            .map(|(key, value)| key.len() + value.len())
            .sum();
        if bytes > self.max_bytes {
            problems.push(ImportProblem::TooLarge {
                bytes,
                max: self.max_bytes,
            });
        }
        if !problems.is_empty() {
            return Err(ImportError { problems });
        }
        let mut context = Context::empty();
        let mut seen = Vec::new();
        for (key, value) in pairs {
            if let Some(problem) = malformed(key, value) {
                problems.push(problem);
                continue;
            }
            let Ok(index) = self.codecs.binary_search_by(|codec| codec.name().cmp(key)) else {
                continue;
            };
            if seen.contains(&index) {
                problems.push(ImportProblem::Duplicate {
                    key: key.to_string(),
                });
                continue;
            }
            seen.push(index);
            if let Err(reason) = self.codecs[index].import(value, &mut context) {
                problems.push(ImportProblem::Unparsable {
                    key: key.to_string(),
                    reason,
                });
            }
        }
        match problems.is_empty() {
            true => Ok(context),
            false => Err(ImportError { problems }),
        }
    }
}

fn malformed(key: &str, value: &str) -> Option<ImportProblem> {
    // W3C baggage keys are HTTP tokens; values must not carry control characters.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if key.is_empty() || !key.chars().all(token) {
        return Some(ImportProblem::MalformedKey {
            key: key.escape_debug().to_string(),
        });
    }
    if value.chars().any(char::is_control) {
        return Some(ImportProblem::MalformedValue {
            key: key.to_string(),
        });
    }
    None
}

impl fmt::Debug for Propagation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Propagation")
            .field(
                "vars",
                &self.codecs.iter().map(|c| c.name()).collect::<Vec<_>>(),
            )
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

/// One variable's text form, whatever its type.
trait Codec: Send + Sync {
    fn name(&self) -> &'static str;
    fn export(&self, context: &Context) -> Option<String>;
    fn import(&self, text: &str, context: &mut Context) -> Result<(), String>;
}

struct TextCodec<T: 'static>(&'static ContextVar<T>);

impl<T> Codec for TextCodec<T>
where
    T: fmt::Display + FromStr + Send + Sync + 'static,
    T::Err: fmt::Display,
{
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn export(&self, context: &Context) -> Option<String> {
        context.get(self.0).map(T::to_string)
    }

    fn import(&self, text: &str, context: &mut Context) -> Result<(), String> {
        let value = text.parse::<T>().map_err(|error| error.to_string())?;
        *context = context.with_value(self.0, value);
        Ok(())
    }
}

/// Why [`Propagation::import`] refused its input; it lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    problems: Vec<ImportProblem>,
}

impl ImportError {
    /// Every problem found, in input order (size limits first).
    pub fn problems(&self) -> &[ImportProblem] {
        &self.problems
    }
}

/// One problem with imported context.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportProblem {
    /// More entries than [`Propagation::max_entries`] allows.
    TooManyEntries {
        /// Entries given.
        count: usize,
        /// Entries allowed.
        max: usize,
    },
    /// More bytes than [`Propagation::max_bytes`] allows.
    TooLarge {
        /// Bytes of names and values given.
        bytes: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A name that is empty or not an HTTP token.
    MalformedKey {
        /// The name, escaped.
        key: String,
    },
    /// A value with control characters.
    MalformedValue {
        /// The entry's name.
        key: String,
    },
    /// The same variable twice.
    Duplicate {
        /// The entry's name.
        key: String,
    },
    /// A value its variable's `FromStr` refused.
    Unparsable {
        /// The entry's name.
        key: String,
        /// What `FromStr` said.
        reason: String,
    },
}

impl fmt::Display for ImportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportProblem::TooManyEntries { count, max } => {
                write!(f, "{count} entries, more than the {max} allowed")
            }
            ImportProblem::TooLarge { bytes, max } => {
                write!(f, "{bytes} bytes, more than the {max} allowed")
            }
            ImportProblem::MalformedKey { key } => write!(f, "malformed name `{key}`"),
            ImportProblem::MalformedValue { key } => {
                write!(f, "`{key}`: value has control characters")
            }
            ImportProblem::Duplicate { key } => write!(f, "`{key}` given twice"),
            ImportProblem::Unparsable { key, reason } => write!(f, "`{key}`: {reason}"),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot import context: ")?;
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

impl Error for ImportError {}
