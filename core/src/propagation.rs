//! [`Propagation`]: the variables that cross process boundaries, as text pairs.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::context::Context;
use crate::var::ContextVar;

mod problems;

pub use problems::{ExportError, ExportProblem, ImportError, ImportProblem};

/// The variables that leave the process with a job or a request, and how they travel: as text
/// pairs (name, value), each written with the variable's `Display` and read back with its
/// `FromStr`. The same pairs are what an HTTP integration sends as W3C `baggage`.
///
/// Variables not listed never leave the process. Exporting refuses, with a typed
/// [`ExportProblem`], any value its import would refuse, so what [`export`](Self::export) gives
/// always imports. Importing a bad entry gives a typed [`ImportProblem`], and no half-built
/// context comes back. Entries under names no listed variable has are ignored whatever they
/// hold (other systems' baggage), but count towards the size limits.
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
/// let pairs = propagation.export(&here).unwrap();
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
///
/// let here = Context::empty().with_value(&TENANT, "acme\nHost: evil".to_string());
/// let error = propagation.export(&here).unwrap_err();
/// assert_eq!(error.to_string(), "cannot export context: `tenant`: value has control characters");
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
    /// apart. When the name is not a W3C baggage key (an HTTP token: one or more ASCII letters,
    /// digits or ``!#$&'*+-.^_`|~``), or holds a `%`, which OpenTelemetry's readers decode as an
    /// escape: no carrier could hold it.
    ///
    /// ```should_panic
    /// use ctxflow::{ContextVar, Propagation};
    /// static USER: ContextVar<String> = ContextVar::new("user name");
    /// let _ = Propagation::new().var(&USER); // panics: a space is not allowed in a name
    /// ```
    pub fn var<T>(mut self, var: &'static ContextVar<T>) -> Self
    where
        T: fmt::Display + FromStr + Send + Sync + 'static,
        T::Err: fmt::Display,
    {
        let name = var.name();
        if !is_token(name) {
            panic!(
                "ctxflow: the variable named `{}` cannot cross processes: a name must be an \
                 HTTP token without `%` (one or more ASCII letters, digits or !#$&'*+-.^_`|~)",
                name.escape_debug()
            );
        }
        let index = match self.codecs.binary_search_by(|codec| codec.name().cmp(name)) {
            Ok(_) => panic!("ctxflow: two variables named `{name}` cannot both cross processes"),
            Err(index) => index,
        };
        self.codecs.insert(index, Arc::new(TextCodec(var)));
        self
    }

    /// At most `max` entries are imported, listed or not; more is an error, and import stops
    /// reading at the first entry over the limit. Export refuses more than `max` as well.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max;
        self
    }

    /// At most `max` bytes of names and values are imported, listed or not; more is an error,
    /// and import stops reading at the entry that goes over the limit. Export refuses more than
    /// `max` as well.
    pub fn max_bytes(mut self, max: usize) -> Self {
        self.max_bytes = max;
        self
    }

    /// How many entries are imported at most: what a carrier that writes other systems' entries
    /// beside the listed ones keeps to, so that its own reader takes the whole.
    ///
    /// ```
    /// use ctxflow::Propagation;
    /// assert_eq!(Propagation::new().entry_limit(), 64);
    /// assert_eq!(Propagation::new().max_entries(8).entry_limit(), 8);
    /// ```
    pub fn entry_limit(&self) -> usize {
        self.max_entries
    }

    /// How many bytes of names and values are imported at most; see
    /// [`entry_limit`](Self::entry_limit).
    ///
    /// ```
    /// use ctxflow::Propagation;
    /// assert_eq!(Propagation::new().max_bytes(512).byte_limit(), 512);
    /// ```
    pub fn byte_limit(&self) -> usize {
        self.max_bytes
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

    /// The listed variables set in `context`, as (name, value) pairs sorted by name, or every
    /// reason [`import`](Self::import) would refuse them: a value with control characters, a
    /// value its variable's `FromStr` does not read back, or more entries or bytes than the
    /// limits. Nothing is exported then, so the receiving side never gets a partial context.
    pub fn export(&self, context: &Context) -> Result<Vec<(String, String)>, ExportError> {
        let mut pairs = Vec::new();
        let mut problems = Vec::new();
        let mut bytes = 0usize;
        for codec in &self.codecs {
            let Some(value) = codec.export(context) else {
                continue;
            };
            let key = codec.name();
            if has_control_characters(&value) {
                problems.push(ExportProblem::MalformedValue { key: key.into() });
            } else if let Err(reason) = codec.parses(&value) {
                problems.push(ExportProblem::Unparsable {
                    key: key.into(),
                    reason,
                });
            }
            bytes = bytes.saturating_add(key.len() + value.len());
            pairs.push((key.to_string(), value));
        }
        if bytes > self.max_bytes {
            let max = self.max_bytes;
            problems.insert(0, ExportProblem::TooLarge { bytes, max });
        }
        if pairs.len() > self.max_entries {
            let (count, max) = (pairs.len(), self.max_entries);
            problems.insert(0, ExportProblem::TooManyEntries { count, max });
        }
        match problems.is_empty() {
            true => Ok(pairs),
            false => Err(ExportError::new(problems)),
        }
    }

    /// [`export`](Self::export) of the current context as it is, whatever flow control says: a
    /// listed [non-flowing](ContextVar::non_flowing) variable is exported, and inside
    /// [`suppress_flow`](crate::suppress_flow) every listed variable still is, since
    /// `suppress_flow` changes only what is spawned. For what a spawn would take, export
    /// [`Context::inheritable`] instead: `propagation.export(&Context::inheritable())`.
    ///
    /// ```
    /// use ctxflow::{Context, ContextVar, Propagation};
    /// static TENANT: ContextVar<String> = ContextVar::new("tenant");
    /// static TX: ContextVar<u64> = ContextVar::non_flowing("tx");
    ///
    /// let propagation = Propagation::new().var(&TENANT).var(&TX);
    /// let _tenant = TENANT.set("acme".into());
    /// let _tx = TX.set(7);
    /// let pairs = propagation.export_current().unwrap();
    /// assert_eq!(pairs, [("tenant".to_string(), "acme".to_string()), ("tx".into(), "7".into())]);
    ///
    /// // What a spawn would take: no non-flowing variable, and nothing inside `suppress_flow`.
    /// let flowing = propagation.export(&Context::inheritable()).unwrap();
    /// assert_eq!(flowing, [("tenant".to_string(), "acme".to_string())]);
    /// let suppressed = ctxflow::suppress_flow(|| propagation.export(&Context::inheritable()));
    /// assert!(suppressed.unwrap().is_empty());
    /// ```
    pub fn export_current(&self) -> Result<Vec<(String, String)>, ExportError> {
        self.export(&Context::current_variables())
    }

    /// A fresh context holding the listed variables found in `pairs`, or every problem found.
    ///
    /// `pairs` is read lazily and only as far as the limits: the first entry over
    /// [`max_entries`](Self::max_entries) or [`max_bytes`](Self::max_bytes) ends the import
    /// with that one problem, so neither the work nor the memory grows with the input. Entries
    /// whose name no listed variable has are only counted, never checked.
    pub fn import<'a, I>(&self, pairs: I) -> Result<Context, ImportError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut context = Context::empty();
        let mut problems = Vec::new();
        let mut seen = Vec::new();
        let mut entries = 0usize;
        let mut bytes = 0usize;
        for (key, value) in pairs {
            entries += 1;
            if entries > self.max_entries {
                let max = self.max_entries;
                return Err(ImportError::limit(ImportProblem::TooManyEntries { max }));
            }
            bytes = bytes.saturating_add(key.len()).saturating_add(value.len());
            if bytes > self.max_bytes {
                let max = self.max_bytes;
                return Err(ImportError::limit(ImportProblem::TooLarge { bytes, max }));
            }
            let Ok(index) = self.codecs.binary_search_by(|codec| codec.name().cmp(key)) else {
                continue;
            };
            if seen.contains(&index) {
                problems.push(ImportProblem::Duplicate { key: key.into() });
                continue;
            }
            seen.push(index);
            if has_control_characters(value) {
                problems.push(ImportProblem::MalformedValue { key: key.into() });
            } else if let Err(reason) = self.codecs[index].import(value, &mut context) {
                problems.push(ImportProblem::Unparsable {
                    key: key.into(),
                    reason,
                });
            }
        }
        match problems.is_empty() {
            true => Ok(context),
            false => Err(ImportError::new(problems)),
        }
    }
}

/// W3C baggage keys are HTTP tokens; `%` is one, but OpenTelemetry's readers decode it as an
/// escape, so a name with one would not arrive as sent.
fn is_token(name: &str) -> bool {
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$&'*+-.^_`|~".contains(c);
    !name.is_empty() && name.chars().all(token)
}

/// Values must not carry control characters: they would break the header or line they travel in.
fn has_control_characters(value: &str) -> bool {
    value.chars().any(char::is_control)
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
    /// Whether `import` would accept `text`, without building anything.
    fn parses(&self, text: &str) -> Result<(), String>;
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

    fn parses(&self, text: &str) -> Result<(), String> {
        text.parse::<T>()
            .map(drop)
            .map_err(|error| error.to_string())
    }
}
