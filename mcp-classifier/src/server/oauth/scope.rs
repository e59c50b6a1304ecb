//! The two scopes and what each operation needs.

use std::fmt;

use crate::wire::envelope::Operation;

/// Reading the stored traffic: the query tools, resources, prompts and completions.
pub const READ: &str = "traffic:read";
/// Classifying readings: `classify`, `classify_by_id`, `classify_batch`.
pub const CLASSIFY: &str = "traffic:classify";

/// The tools that need [`CLASSIFY`]; every other tool needs [`READ`].
pub const CLASSIFY_TOOLS: [&str; 3] = ["classify", "classify_by_id", "classify_batch"];

/// Methods any valid token may call: the lifecycle, and listing the tools (which holds no
/// traffic data). Notifications (`notifications/…`) are free too.
const FREE_METHODS: [&str; 5] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "logging/setLevel",
];

/// A set of this server's scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub const NONE: Self = Self(0);
    pub const READ: Self = Self(1);
    pub const CLASSIFY: Self = Self(2);
    pub const ALL: Self = Self(3);

    /// The scopes named in `names` (space-separated, as the `scope` claim holds them); names
    /// of other scopes are ignored.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        names
            .into_iter()
            .fold(Self::NONE, |scopes, name| match name {
                READ => scopes.with(Self::READ),
                CLASSIFY => scopes.with(Self::CLASSIFY),
                _ => scopes,
            })
    }

    pub fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

/// Space-separated scope names, as `WWW-Authenticate`'s `scope` gives them.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [(Self::READ, READ), (Self::CLASSIFY, CLASSIFY)];
        let mut names = names
            .iter()
            .filter(|(scope, _)| self.contains(*scope))
            .map(|(_, name)| *name);
        if let Some(first) = names.next() {
            f.write_str(first)?;
        }
        names.try_for_each(|name| write!(f, " {name}"))
    }
}

/// What a message needs: nothing for the lifecycle, `tools/list`, notifications and
/// responses; [`CLASSIFY`] to call a classification tool; [`READ`] for every other tool and
/// method (resources, prompts, completions, anything new). A message whose operation could
/// not be read needs both, so that no reading error ever lets a call through; rmcp refuses
/// such a message anyway (a batch included).
pub(crate) fn required(operation: &Operation) -> Scopes {
    match operation {
        Operation::Response => Scopes::NONE,
        Operation::Method(method)
            if FREE_METHODS.contains(&method.as_str()) || method.starts_with("notifications/") =>
        {
            Scopes::NONE
        }
        Operation::Method(_) => Scopes::READ,
        Operation::ToolCall(tool) if CLASSIFY_TOOLS.contains(&tool.as_str()) => Scopes::CLASSIFY,
        Operation::ToolCall(_) => Scopes::READ,
        Operation::Unknown => Scopes::ALL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::ClassifierServer;

    fn method(name: &str) -> Scopes {
        required(&Operation::Method(name.into()))
    }

    fn tool(name: &str) -> Scopes {
        required(&Operation::ToolCall(name.into()))
    }

    #[test]
    fn scopes_are_read_from_the_claim_and_written_space_separated() {
        let scopes = Scopes::parse("openid traffic:read profile".split(' '));
        assert_eq!(scopes, Scopes::READ);
        assert_eq!(
            Scopes::parse(["traffic:classify", "traffic:read"]),
            Scopes::ALL
        );
        assert_eq!(Scopes::parse(["traffic:*", "Traffic:read"]), Scopes::NONE);
        assert_eq!(Scopes::ALL.to_string(), "traffic:read traffic:classify");
        assert_eq!(Scopes::CLASSIFY.to_string(), "traffic:classify");
        assert_eq!(Scopes::NONE.to_string(), "");
        assert!(Scopes::ALL.contains(Scopes::READ));
        assert!(!Scopes::READ.contains(Scopes::CLASSIFY));
        assert!(Scopes::READ.contains(Scopes::NONE));
    }

    #[test]
    fn each_operation_needs_its_scope() {
        for free in [
            "initialize",
            "ping",
            "tools/list",
            "server/discover",
            "notifications/initialized",
            "notifications/cancelled",
        ] {
            assert_eq!(method(free), Scopes::NONE, "{free}");
        }
        for read in [
            "resources/list",
            "resources/templates/list",
            "resources/read",
            "prompts/list",
            "prompts/get",
            "completion/complete",
            "tasks/get",
            "something/new",
        ] {
            assert_eq!(method(read), Scopes::READ, "{read}");
        }
        assert_eq!(required(&Operation::Response), Scopes::NONE);
        assert_eq!(required(&Operation::Unknown), Scopes::ALL);
        assert_eq!(tool("unknown_tool"), Scopes::READ);
    }

    /// Every tool the server can list needs the scope its kind calls for: a new tool is a
    /// query tool unless it is added to [`CLASSIFY_TOOLS`].
    #[test]
    fn every_tool_of_the_server_has_its_scope() {
        for listed in ClassifierServer::tool_router().list_all() {
            assert_eq!(tool(&listed.name), Scopes::CLASSIFY, "{}", listed.name);
        }
        let queries = ClassifierServer::query_router().list_all();
        assert_eq!(queries.len(), 5);
        for listed in queries {
            assert_eq!(tool(&listed.name), Scopes::READ, "{}", listed.name);
        }
    }
}
