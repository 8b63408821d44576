//! The courtesy check of a plugin migration, before any of it runs. It is **not** the
//! boundary: in roles mode the migration runs on a session logged in as the plugin's own role,
//! and PostgreSQL refuses it everything outside its schema whatever the SQL says. This check
//! only gives early, friendly messages naming the statement, for the mistakes a plugin author
//! makes: a statement kind a schema change has no use for, an object aimed at another schema,
//! `CONCURRENTLY` inside a transaction.
//!
//! The SQL is split into statements with sqlparser's PostgreSQL tokenizer (strings, quoted
//! names, dollar quotes and comments are understood), and each statement is parsed into
//! sqlparser's syntax tree; the rules look at the tree (statement kind, object names), never
//! at words in the text. A statement sqlparser cannot read is marked [`Statement::unreadable`]:
//! PostgreSQL judges it in roles mode, and convention mode (no boundary at all) refuses it.

use sqlparser::ast::{
    AlterTableOperation, CommentObject, FromTable, ObjectName, ObjectType, Statement as Ast,
    TableFactor, TableObject,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

/// One statement of a migration, as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based position in the migration.
    pub position: usize,
    /// The statement's text, without the `;`.
    pub text: String,
    /// Why sqlparser could not read it, when it could not: only PostgreSQL can judge it.
    pub unreadable: Option<String>,
}

/// Why a statement is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 1-based position of the statement (0: the text does not tokenize).
    pub statement: usize,
    /// What is wrong.
    pub detail: String,
    /// The statement's first 120 characters.
    pub text: String,
}

/// What a statement may be, for the messages.
const ALLOWED: &str = "only CREATE, ALTER and DROP of tables, indexes, views, sequences, types and domains, COMMENT ON them, and INSERT, UPDATE and DELETE on the plugin's tables";

/// Splits `sql` into statements and checks each one sqlparser can read against the rules
/// for a plugin owning `schema`; returns the statements to run, or the first refusal.
pub fn check(sql: &str, schema: &str) -> Result<Vec<Statement>, Refusal> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| Refusal {
            statement: 0,
            detail: format!("cannot read the SQL: {e}"),
            text: excerpt(sql),
        })?;
    let offsets = LineOffsets::new(sql);
    let mut statements = Vec::new();
    let mut start = 0;
    let mut has_tokens = false;
    let mut flush = |end: usize, has_tokens: &mut bool, start: &mut usize| {
        let text = sql[*start..end].trim().to_owned();
        if *has_tokens {
            let position = statements.len() + 1;
            // The whole text must be one statement: a parser that stopped early would have
            // checked something else than what PostgreSQL runs.
            let parsed =
                Parser::parse_sql(&PostgreSqlDialect {}, &text).and_then(|mut all| {
                    match (all.pop(), all.is_empty()) {
                        (Some(ast), true) => Ok(ast),
                        _ => Err(sqlparser::parser::ParserError::ParserError(
                            "not exactly one statement".into(),
                        )),
                    }
                });
            let unreadable = match parsed {
                Ok(ast) => {
                    check_statement(&ast, schema).map_err(|detail| Refusal {
                        statement: position,
                        detail,
                        text: excerpt(&text),
                    })?;
                    None
                }
                Err(e) => Some(e.to_string()),
            };
            statements.push(Statement {
                position,
                text,
                unreadable,
            });
        }
        *has_tokens = false;
        Ok::<(), Refusal>(())
    };
    for TokenWithSpan { token, span } in &tokens {
        match token {
            Token::SemiColon => {
                let at = offsets.byte(sql, span.start);
                flush(at, &mut has_tokens, &mut start)?;
                start = at + 1;
            }
            Token::Whitespace(_) | Token::EOF => {}
            _ => has_tokens = true,
        }
    }
    flush(sql.len(), &mut has_tokens, &mut start)?;
    Ok(statements)
}

/// The rules for one statement sqlparser read.
fn check_statement(statement: &Ast, schema: &str) -> Result<(), String> {
    match statement {
        Ast::CreateTable(t) if t.temporary => Err(temporary()),
        Ast::CreateTable(t) => own(&t.name, schema),
        Ast::CreateIndex(i) => {
            if i.concurrently {
                return Err("CREATE INDEX CONCURRENTLY cannot run inside the migration's transaction; build the index without CONCURRENTLY".into());
            }
            if i.name.as_ref().is_some_and(|n| n.0.len() > 1) {
                return Err("an index takes its table's schema: give its name unqualified".into());
            }
            own(&i.table_name, schema)
        }
        Ast::CreateView(v) if v.temporary => Err(temporary()),
        Ast::CreateView(v) => own(&v.name, schema),
        Ast::CreateSequence {
            temporary: true, ..
        } => Err(temporary()),
        Ast::CreateSequence { name, .. } | Ast::CreateType { name, .. } => own(name, schema),
        Ast::CreateDomain(d) => own(&d.name, schema),
        Ast::AlterTable(a) => {
            if a
                .operations
                .iter()
                .any(|op| matches!(op, AlterTableOperation::OwnerTo { .. }))
            {
                return Err(
                    "changes an owner (OWNER TO); plugin objects belong to the plugin's role"
                        .into(),
                );
            }
            own(&a.name, schema)
        }
        Ast::AlterIndex { name, .. } => own(name, schema),
        Ast::AlterView(v) => own(&v.name, schema),
        Ast::Drop {
            object_type,
            names,
            ..
        } => {
            if !matches!(
                object_type,
                ObjectType::Table
                    | ObjectType::View
                    | ObjectType::MaterializedView
                    | ObjectType::Index
                    | ObjectType::Sequence
                    | ObjectType::Type
            ) {
                return Err(format!(
                    "DROP {object_type} is not allowed in a plugin migration: {ALLOWED}"
                ));
            }
            names.iter().try_for_each(|n| own(n, schema))
        }
        Ast::Comment {
            object_type,
            object_name,
            ..
        } => match object_type {
            // `table.column` or `schema.table.column`: the column is not a schema.
            CommentObject::Column => own_parts(&parts(object_name)[..], schema, 1),
            CommentObject::Table
            | CommentObject::View
            | CommentObject::MaterializedView
            | CommentObject::Index
            | CommentObject::Sequence
            | CommentObject::Type
            | CommentObject::Domain => own(object_name, schema),
            other => Err(format!(
                "COMMENT ON {other} is not allowed; comment on the plugin's own tables, columns, indexes, views, sequences or types"
            )),
        },
        Ast::Insert(i) => match &i.table {
            TableObject::TableName(name) => own(name, schema),
            _ => Err(format!("this INSERT is not allowed: {ALLOWED}")),
        },
        Ast::Update(u) => match &u.table.relation {
            TableFactor::Table { name, .. } => own(name, schema),
            _ => Err(format!("this UPDATE is not allowed: {ALLOWED}")),
        },
        Ast::Delete(d) => {
            let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
            for table in from {
                match &table.relation {
                    TableFactor::Table { name, .. } => own(name, schema)?,
                    _ => return Err(format!("this DELETE is not allowed: {ALLOWED}")),
                }
            }
            d.tables.iter().try_for_each(|n| own(n, schema))
        }
        other => Err(format!(
            "{} statements are not allowed in a plugin migration: {ALLOWED}",
            kind(other)
        )),
    }
}

fn temporary() -> String {
    "temporary objects do not belong in a migration".into()
}

/// The statement's leading keywords as sqlparser prints it back (`GRANT`, `CREATE FUNCTION`,
/// `SET ROLE`), for the message.
fn kind(statement: &Ast) -> String {
    let text = statement.to_string();
    let mut words = text
        .split_whitespace()
        .take_while(|w| w.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
    let Some(first) = words.next() else {
        return "these".into();
    };
    let mut kind = first.to_owned();
    if ["CREATE", "ALTER", "DROP", "SET", "RESET"].contains(&first) {
        for word in words {
            kind.push(' ');
            kind.push_str(word);
            if ![
                "OR",
                "REPLACE",
                "TEMPORARY",
                "TEMP",
                "UNIQUE",
                "MATERIALIZED",
            ]
            .contains(&word)
            {
                break;
            }
        }
    }
    kind
}

/// The parts of a name as PostgreSQL resolves them (unquoted parts fold to lower case).
fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|part| match part.as_ident() {
            Some(ident) if ident.quote_style.is_some() => ident.value.clone(),
            Some(ident) => ident.value.to_ascii_lowercase(),
            None => part.to_string(),
        })
        .collect()
}

/// An object name must be unqualified (it lands in the plugin's schema, the only one on its
/// search path) or qualified with the plugin's schema.
fn own(name: &ObjectName, schema: &str) -> Result<(), String> {
    own_parts(&parts(name), schema, 0)
}

/// [`own`] for a name whose last `inner` parts name something inside the object (a column).
fn own_parts(name: &[String], schema: &str, inner: usize) -> Result<(), String> {
    let object = &name[..name.len().saturating_sub(inner)];
    match object {
        [_] => Ok(()),
        [qualifier, _] if qualifier == schema => Ok(()),
        [qualifier, object] => Err(format!(
            "targets {qualifier}.{object}, outside the plugin's schema {schema}"
        )),
        _ => Err(format!(
            "names {}: use the plugin's schema {schema} or no schema",
            name.join(".")
        )),
    }
}

/// Byte offsets of line starts, to turn the tokenizer's (line, column) into a byte offset.
struct LineOffsets(Vec<usize>);

impl LineOffsets {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self(starts)
    }

    fn byte(&self, text: &str, at: Location) -> usize {
        let line = (at.line as usize).saturating_sub(1);
        let Some(&start) = self.0.get(line) else {
            return text.len();
        };
        let column = (at.column as usize).saturating_sub(1);
        text[start..]
            .char_indices()
            .nth(column)
            .map_or(text.len(), |(i, _)| start + i)
    }
}

fn excerpt(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &str = "plugin_notes";

    fn refused(sql: &str) -> Refusal {
        check(sql, SCHEMA).expect_err(sql)
    }

    #[test]
    fn accepts_ordinary_schema_changes_and_splits_them() {
        let sql = "-- notes\nCREATE TABLE IF NOT EXISTS notes (id text PRIMARY KEY, body text NOT NULL DEFAULT ';', note jsonb);\n\
                   CREATE UNIQUE INDEX notes_body_idx ON plugin_notes.notes (body);\n\
                   CREATE INDEX ON notes (id);\n\
                   ALTER TABLE notes ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(), ADD COLUMN owner text, ADD COLUMN schema text;\n\
                   COMMENT ON COLUMN notes.body IS 'the text; with a semicolon';\n\
                   CREATE VIEW recent AS SELECT * FROM notes WHERE body <> $$x;y$$;\n\
                   INSERT INTO notes (id, body) VALUES ('a', E'it''s\\n;');\n\
                   UPDATE notes SET body = 'b'; DELETE FROM ONLY notes WHERE id = 'a';\n\
                   DROP INDEX IF EXISTS notes_body_idx, plugin_notes.other_idx;\n\
                   /* a; comment */";
        let statements = check(sql, SCHEMA).expect("accepted");
        assert_eq!(statements.len(), 10);
        assert!(
            statements.iter().all(|s| s.unreadable.is_none()),
            "{statements:?}"
        );
        assert!(statements[0].text.starts_with("-- notes\nCREATE TABLE"));
        assert!(statements[0].text.ends_with("note jsonb)"));
        assert_eq!(
            statements[4].text,
            "COMMENT ON COLUMN notes.body IS 'the text; with a semicolon'"
        );
        assert_eq!(
            statements[6].text,
            "INSERT INTO notes (id, body) VALUES ('a', E'it''s\\n;')"
        );
        assert_eq!(statements[9].position, 10);
    }

    #[test]
    fn names_objects_outside_the_plugin_schema() {
        let r =
            refused("CREATE TABLE notes (id text);\nALTER TABLE public.users ADD COLUMN x text;");
        assert_eq!(r.statement, 2);
        assert!(r.detail.contains("public.users"), "{}", r.detail);
        assert!(r.text.starts_with("ALTER TABLE public.users"));
        for sql in [
            "DROP TABLE notes, public.teams",
            "INSERT INTO public.users (id) VALUES ('x')",
            "DELETE FROM plugin_other.things",
            "UPDATE \"plugin_other\".things SET a = 1",
            "CREATE INDEX x ON public.users (email)",
            "CREATE INDEX plugin_notes.x ON notes (id)",
            "COMMENT ON TABLE public.users IS 'x'",
            "COMMENT ON COLUMN public.users.email IS 'x'",
            "ALTER TABLE notes OWNER TO deploystack",
            "CREATE TABLE other_db.public.t (id int)",
        ] {
            refused(sql);
        }
    }

    #[test]
    fn names_statement_kinds_a_schema_change_has_no_use_for() {
        for (sql, kind) in [
            ("SET ROLE deploystack", "SET ROLE"),
            ("RESET ROLE", "RESET ROLE"),
            ("SET search_path = public", "SET"),
            ("SELECT set_config('role', 'deploystack', true)", "SELECT"),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                "CREATE FUNCTION",
            ),
            ("CREATE SCHEMA other", "CREATE SCHEMA"),
            ("CREATE ROLE admin", "CREATE ROLE"),
            ("CREATE EXTENSION dblink", "CREATE EXTENSION"),
            ("GRANT ALL ON notes TO PUBLIC", "GRANT"),
            ("COMMIT", "COMMIT"),
            ("COPY notes FROM PROGRAM 'id'", "COPY"),
            ("SELECT * FROM users", "SELECT"),
        ] {
            let r = refused(sql);
            assert_eq!(r.statement, 1, "{sql}");
            assert!(
                r.detail
                    .starts_with(&format!("{kind} statements are not allowed")),
                "{sql}: {}",
                r.detail
            );
        }
        for sql in [
            "CREATE TEMP TABLE t (a int)",
            "CREATE INDEX CONCURRENTLY notes_idx ON notes (id)",
        ] {
            assert_eq!(refused(sql).statement, 1, "{sql}");
        }
    }

    #[test]
    fn what_sqlparser_cannot_read_is_left_to_postgresql() {
        // Not the boundary: functions inside an allowed statement and names sqlparser cannot
        // read go to PostgreSQL, which runs them as the plugin's own login.
        let statements = check(
            "INSERT INTO loot SELECT query_to_xml('select 1', false, false, '')::text;\n\
             DROP TABLE loot, U&\"public\".users;\n\
             DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$",
            SCHEMA,
        )
        .expect("passed on");
        assert!(statements[0].unreadable.is_none());
        // sqlparser stops at `U&`: the statement it would check is not the one sent.
        assert!(statements[1].unreadable.is_some(), "{statements:?}");
        assert_eq!(statements[1].position, 2);
        assert!(statements[2].unreadable.is_some(), "{statements:?}");
    }

    #[test]
    fn quoted_names_keep_their_case() {
        refused("CREATE TABLE \"Plugin_notes\".t (a int)");
        check("CREATE TABLE PLUGIN_NOTES.t (a int)", SCHEMA).expect("folds to lower case");
        let r = refused("SELECT 'unterminated");
        assert_eq!(r.statement, 0);
    }
}
