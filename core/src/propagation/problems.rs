//! Why a [`Propagation`] refused to import or to export: typed problems,
//! all of them at once.

use std::error::Error;
use std::fmt;

#[cfg(doc)]
use super::Propagation;

/// Why [`Propagation::import`] refused its input; it lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    problems: Vec<ImportProblem>,
}

impl ImportError {
    /// An error of `problems`: for a format that finds some before [`Propagation::import`]
    /// sees its entries (a W3C baggage value that is not text once percent-decoded), and
    /// reports them as the import's own.
    pub fn new(problems: Vec<ImportProblem>) -> Self {
        ImportError { problems }
    }

    pub(super) fn limit(problem: ImportProblem) -> Self {
        ImportError {
            problems: vec![problem],
        }
    }

    /// Every problem found, in input order; a size limit, which ends reading, is the only one.
    pub fn problems(&self) -> &[ImportProblem] {
        &self.problems
    }
}

/// One problem with imported context.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImportProblem {
    /// More entries than [`Propagation::max_entries`] allows. Reading stopped at the first
    /// entry over the limit, so how many there were is not known.
    TooManyEntries {
        /// Entries allowed.
        max: usize,
    },
    /// More bytes than [`Propagation::max_bytes`] allows.
    TooLarge {
        /// Bytes of names and values read, up to and including the entry that went over.
        bytes: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A listed variable's value with control characters, or, once its format decoded it,
    /// not text.
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
            ImportProblem::TooManyEntries { max } => {
                write!(f, "more than the {max} entries allowed")
            }
            ImportProblem::TooLarge { bytes, max } => {
                write!(f, "{bytes} bytes, more than the {max} allowed")
            }
            ImportProblem::MalformedValue { key } => {
                write!(f, "`{key}`: value has control characters or is not text")
            }
            ImportProblem::Duplicate { key } => write!(f, "`{key}` given twice"),
            ImportProblem::Unparsable { key, reason } => write!(f, "`{key}`: {reason}"),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problems(f, "cannot import context: ", &self.problems)
    }
}

impl Error for ImportError {}

/// Why [`Propagation::export`] refused a context: the other side's
/// [`import`](Propagation::import) would have refused what it gave. It lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportError {
    problems: Vec<ExportProblem>,
}

impl ExportError {
    pub(super) fn new(problems: Vec<ExportProblem>) -> Self {
        ExportError { problems }
    }

    /// Every problem found: size limits first, then the variables in name order.
    pub fn problems(&self) -> &[ExportProblem] {
        &self.problems
    }
}

/// One reason a context cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportProblem {
    /// More listed variables set than [`Propagation::max_entries`] allows.
    TooManyEntries {
        /// Entries the export would give.
        count: usize,
        /// Entries allowed.
        max: usize,
    },
    /// More bytes than [`Propagation::max_bytes`] allows.
    TooLarge {
        /// Bytes of names and values the export would give.
        bytes: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// A value whose text (its `Display`) has control characters.
    MalformedValue {
        /// The variable's name.
        key: String,
    },
    /// A value whose text its own variable's `FromStr` refuses.
    Unparsable {
        /// The variable's name.
        key: String,
        /// What `FromStr` said.
        reason: String,
    },
}

impl fmt::Display for ExportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportProblem::TooManyEntries { count, max } => {
                write!(f, "{count} entries, more than the {max} allowed")
            }
            ExportProblem::TooLarge { bytes, max } => {
                write!(f, "{bytes} bytes, more than the {max} allowed")
            }
            ExportProblem::MalformedValue { key } => {
                write!(f, "`{key}`: value has control characters")
            }
            ExportProblem::Unparsable { key, reason } => {
                write!(f, "`{key}`: the value's text does not parse back: {reason}")
            }
        }
    }
}

impl fmt::Display for ExportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problems(f, "cannot export context: ", &self.problems)
    }
}

/// `what` followed by every problem, separated by semicolons.
fn write_problems(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    problems: &[impl fmt::Display],
) -> fmt::Result {
    f.write_str(what)?;
    for (i, problem) in problems.iter().enumerate() {
        if i > 0 {
            f.write_str("; ")?;
        }
        write!(f, "{problem}")?;
    }
    Ok(())
}

impl Error for ExportError {}
