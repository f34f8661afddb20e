//! [`LogFields`]: the context variables that log lines show.

use std::fmt::{self, Display};

use crate::{Context, ContextVar};

/// The context variables every log line shows, by name, when they are set where the line is
/// written.
///
/// Register variables once, at start-up, and hand the set to a log integration: a
/// `tracing_subscriber::fmt` format (`ctxflow::tracing::LogFieldsExt::wrap`, feature `tracing`)
/// or a `log::Log` (`ctxflow::log::ContextLogger`, feature `log`). A value shows with its `Display` form: bare on a
/// text line when it is visible ASCII without `"`, `'`, `\` or `=`, else quoted and escaped as
/// the subscriber writes a string field (`request_id="abc user=admin"`, `"a\nb"`), so that no
/// value, whoever chose it, adds a field or a line; a string member in JSON.
///
/// ```
/// use ctxflow::fields::LogFields;
/// use ctxflow::ContextVar;
///
/// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
/// static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
///
/// let fields = LogFields::new().field(&REQUEST_ID).field(&USER_ID);
/// assert_eq!(fields.names().collect::<Vec<_>>(), ["request_id", "user_id"]);
/// ```
#[derive(Clone, Default)]
pub struct LogFields {
    fields: Vec<LogField>,
}

/// One registered variable.
#[derive(Clone, Copy)]
struct LogField {
    var: &'static dyn LoggedVar,
    /// The variable's name, as a one-name slice: what a `tracing` field set is made of.
    name: &'static [&'static str],
}

/// A context variable whose value can be shown, whatever its type.
trait LoggedVar: Send + Sync {
    fn value_in<'cx>(&'static self, context: &'cx Context) -> Option<&'cx dyn Display>;
}

impl<T: Display + Send + Sync + 'static> LoggedVar for ContextVar<T> {
    fn value_in<'cx>(&'static self, context: &'cx Context) -> Option<&'cx dyn Display> {
        context.get(self).map(|value| value as &dyn Display)
    }
}

impl LogFields {
    /// No variables yet.
    ///
    /// ```
    /// use ctxflow::fields::LogFields;
    /// assert_eq!(LogFields::new().names().count(), 0);
    /// ```
    pub fn new() -> Self {
        LogFields::default()
    }

    /// Adds `var`: from now on, lines written where it is set show `name=value` (in JSON,
    /// `"name":"value"`). Lines show variables in the order they were added; adding one twice
    /// changes nothing.
    ///
    /// ```
    /// use ctxflow::fields::LogFields;
    /// use ctxflow::ContextVar;
    ///
    /// static TENANT: ContextVar<&'static str> = ContextVar::new("tenant");
    /// let fields = LogFields::new().field(&TENANT).field(&TENANT);
    /// assert_eq!(fields.names().collect::<Vec<_>>(), ["tenant"]);
    /// ```
    #[must_use = "`field` returns the extended set"]
    pub fn field<T: Display + Send + Sync + 'static>(
        mut self,
        var: &'static ContextVar<T>,
    ) -> Self {
        let name = std::slice::from_ref(&var.info().name);
        let added = LogField { var, name };
        if !self.fields.iter().any(|field| field.is(var)) {
            self.fields.push(added);
        }
        self
    }

    /// The names of the registered variables, in the order they show on a line.
    ///
    /// ```
    /// use ctxflow::fields::LogFields;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let fields = LogFields::new().field(&REQUEST_ID);
    /// assert_eq!(fields.names().collect::<Vec<_>>(), ["request_id"]);
    /// ```
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.fields.iter().map(|field| field.name[0])
    }

    /// Calls `f` with the name and value of each registered variable set in the current
    /// context, in registration order: for formatters of one's own. Values come as they are,
    /// unescaped: a value may hold spaces, `=`, quotes or line breaks, from a request header
    /// for instance, so quote or escape them as the format needs.
    ///
    /// ```
    /// use ctxflow::fields::LogFields;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// static USER_ID: ContextVar<u64> = ContextVar::new("user_id");
    /// let fields = LogFields::new().field(&REQUEST_ID).field(&USER_ID);
    ///
    /// let _token = USER_ID.set(42);
    /// let mut line = String::new();
    /// fields.for_each_current(|name, value| line += &format!("{name}={value}"));
    /// assert_eq!(line, "user_id=42");
    /// ```
    pub fn for_each_current(&self, mut f: impl FnMut(&'static str, &dyn Display)) {
        for field in self.current().iter() {
            f(field.name(), field.value());
        }
    }

    /// The registered variables set where this is called, with their values: what a formatter
    /// puts on the line it is writing. Reading them takes no snapshot of the carriers' state.
    ///
    /// ```
    /// use ctxflow::fields::LogFields;
    /// use ctxflow::ContextVar;
    ///
    /// static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
    /// let fields = LogFields::new().field(&REQUEST_ID);
    /// assert!(fields.current().is_empty());
    ///
    /// let _token = REQUEST_ID.set("req-1".into());
    /// let current = fields.current();
    /// let shown: Vec<_> = current
    ///     .iter()
    ///     .map(|field| format!("{}={}", field.name(), field.value()))
    ///     .collect();
    /// assert_eq!(shown, ["request_id=req-1"]);
    /// ```
    pub fn current(&self) -> CurrentFields<'_> {
        CurrentFields {
            fields: self,
            context: Context::current_variables(),
        }
    }

    /// The registered variables set in `context`, with their values.
    fn set_in<'a>(&'a self, context: &'a Context) -> impl Iterator<Item = Field<'a>> + 'a {
        self.fields.iter().filter_map(move |field| {
            Some(Field {
                name: field.name,
                value: field.var.value_in(context)?,
            })
        })
    }
}

/// The variables of a [`LogFields`] set where [`LogFields::current`] was called.
pub struct CurrentFields<'a> {
    fields: &'a LogFields,
    context: Context,
}

impl CurrentFields<'_> {
    /// Each variable set, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = Field<'_>> + '_ {
        self.fields.set_in(&self.context)
    }

    /// Whether none is set.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl fmt::Debug for CurrentFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.iter()
                    .map(|field| (field.name(), field.value().to_string())),
            )
            .finish()
    }
}

/// One variable set where a line is written: its name and its value, unescaped (see
/// [`Escaped`](crate::fields::Escaped) for a text line).
#[derive(Clone, Copy)]
pub struct Field<'a> {
    name: &'static [&'static str],
    value: &'a dyn Display,
}

impl<'a> Field<'a> {
    /// The variable's name.
    pub fn name(&self) -> &'static str {
        self.name[0]
    }

    /// The variable's name as a one-name slice, the form a `tracing` field set is built from.
    pub fn name_slice(&self) -> &'static [&'static str] {
        self.name
    }

    /// The variable's value, as its `Display` form shows it.
    pub fn value(&self) -> &'a dyn Display {
        self.value
    }
}

impl LogField {
    fn is<T: Send + Sync + 'static>(&self, var: &'static ContextVar<T>) -> bool {
        std::ptr::eq(self.name, std::slice::from_ref(&var.info().name))
    }
}

impl fmt::Debug for LogFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("LogFields")
            .field(&self.names().collect::<Vec<_>>())
            .finish()
    }
}
