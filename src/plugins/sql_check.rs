//! The static check of a plugin migration, before any of it runs: the SQL is split into
//! statements with sqlparser's PostgreSQL tokenizer (strings, quoted names, dollar quotes and
//! comments are understood), and each statement must be a kind a schema change needs, aimed
//! at the plugin's own schema. PostgreSQL enforces the same boundary (the migration runs as
//! the plugin's role); this check names the offending statement first, and refuses what a
//! role could use to leave its boundary (`SET ROLE`, `set_config`, code blocks).

use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

/// One statement of a migration, as it will be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based position in the migration.
    pub position: usize,
    /// The statement's text, without the `;`.
    pub text: String,
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

/// Functions that change session settings (the role) or run SQL given as text, which the
/// check could not see; refused wherever they appear. The migration runner also stops a
/// migration whose role or search path changed after any statement.
const FORBIDDEN_FUNCTIONS: &[&str] = &[
    "set_config",
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "ts_stat",
    "ts_rewrite",
    "dblink",
    "dblink_exec",
];

/// Object kinds a plugin migration may create, change or drop.
const OBJECTS: &[&str] = &["TABLE", "INDEX", "VIEW", "SEQUENCE", "TYPE", "DOMAIN"];

/// Splits `sql` into statements and checks each against the rules for a plugin owning
/// `schema`; returns the statements to run, or the first refusal.
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
    let mut current: Vec<&Token> = Vec::new();
    let mut flush = |end: usize, current: &mut Vec<&Token>, start: &mut usize| {
        let text = sql[*start..end].trim().to_owned();
        if !current.is_empty() {
            let position = statements.len() + 1;
            let statement = Statement { position, text };
            check_statement(current, schema).map_err(|detail| Refusal {
                statement: position,
                detail,
                text: excerpt(&statement.text),
            })?;
            statements.push(statement);
        }
        current.clear();
        Ok::<(), Refusal>(())
    };
    for TokenWithSpan { token, span } in &tokens {
        match token {
            Token::SemiColon => {
                let at = offsets.byte(sql, span.start);
                flush(at, &mut current, &mut start)?;
                start = at + 1;
            }
            Token::Whitespace(_) | Token::EOF => {}
            other => current.push(other),
        }
    }
    flush(sql.len(), &mut current, &mut start)?;
    Ok(statements)
}

/// The rules for one statement (its tokens without whitespace and comments).
fn check_statement(tokens: &[&Token], schema: &str) -> Result<(), String> {
    if let Some(word) = tokens.iter().find_map(|t| match t {
        Token::Word(w)
            if FORBIDDEN_FUNCTIONS
                .iter()
                .any(|f| w.value.eq_ignore_ascii_case(f)) =>
        {
            Some(w)
        }
        _ => None,
    }) {
        return Err(format!(
            "calls {}, which can change the role a migration runs as or run SQL the check cannot see",
            word.value
        ));
    }
    if let Some(Token::Word(w)) = tokens.iter().find(|t| {
        matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("CONCURRENTLY"))
    }) {
        return Err(format!(
            "{} cannot run inside the migration's transaction; build the index without it",
            w.value
        ));
    }
    let mut cursor = Cursor { tokens, at: 0 };
    let verb = cursor.keyword().unwrap_or_default();
    match verb.as_str() {
        "CREATE" => {
            cursor.skip(&["OR", "REPLACE", "UNIQUE", "UNLOGGED"]);
            if cursor.peek_is(&["TEMP", "TEMPORARY"]) {
                return Err("temporary objects do not belong in a migration".into());
            }
            cursor.skip(&["MATERIALIZED"]);
            let object = object_kind(&mut cursor, "CREATE")?;
            cursor.skip(&["IF", "NOT", "EXISTS"]);
            if object == "INDEX" {
                if !cursor.peek_is(&["ON"]) {
                    let name = cursor.name()?;
                    if name.len() > 1 {
                        return Err("an index takes its table's schema: give its name unqualified".into());
                    }
                }
                cursor.expect("ON")?;
                cursor.skip(&["ONLY"]);
            }
            own(&cursor.name()?, schema)
        }
        "ALTER" => {
            cursor.skip(&["MATERIALIZED"]);
            object_kind(&mut cursor, "ALTER")?;
            cursor.skip(&["IF", "EXISTS", "ONLY"]);
            let name = cursor.name()?;
            if cursor.rest_has_pair("SET", "SCHEMA") {
                return Err("moves an object out of the plugin's schema (SET SCHEMA)".into());
            }
            if cursor.rest_has_pair("OWNER", "TO") {
                return Err("changes an owner (OWNER TO); plugin objects belong to the plugin's role".into());
            }
            own(&name, schema)
        }
        "DROP" => {
            cursor.skip(&["MATERIALIZED"]);
            object_kind(&mut cursor, "DROP")?;
            cursor.skip(&["IF", "EXISTS"]);
            loop {
                own(&cursor.name()?, schema)?;
                if !cursor.comma() {
                    return Ok(());
                }
            }
        }
        "COMMENT" => {
            cursor.expect("ON")?;
            cursor.skip(&["MATERIALIZED"]);
            let object = cursor.keyword().unwrap_or_default();
            let mut name = cursor.name()?;
            match object.as_str() {
                // `table.column` or `schema.table.column`: the column is not a schema.
                "COLUMN" => {
                    name.pop();
                }
                o if OBJECTS.contains(&o) => {}
                other => return Err(format!("COMMENT ON {other} is not allowed; comment on the plugin's own tables, columns, indexes, views, sequences or types")),
            }
            own(&name, schema)
        }
        "INSERT" => {
            cursor.expect("INTO")?;
            own(&cursor.name()?, schema)
        }
        "UPDATE" => {
            cursor.skip(&["ONLY"]);
            own(&cursor.name()?, schema)
        }
        "DELETE" => {
            cursor.expect("FROM")?;
            cursor.skip(&["ONLY"]);
            own(&cursor.name()?, schema)
        }
        other => Err(format!(
            "{} statements are not allowed in a plugin migration: only CREATE, ALTER and DROP of tables, indexes, views, sequences and types, COMMENT ON them, and INSERT, UPDATE and DELETE on the plugin's tables",
            if other.is_empty() { "these" } else { other }
        )),
    }
}

/// The object keyword after CREATE/ALTER/DROP, when it is one the plugin may handle.
fn object_kind(cursor: &mut Cursor<'_>, verb: &str) -> Result<String, String> {
    let object = cursor.keyword().unwrap_or_default();
    if OBJECTS.contains(&object.as_str()) {
        Ok(object)
    } else {
        Err(format!(
            "{verb} {object} is not allowed in a plugin migration: only tables, indexes, views, sequences, types and domains (no functions, triggers, schemas, roles or extensions)"
        ))
    }
}

/// An object name must be unqualified (it lands in the plugin's schema, the only one on its
/// search path) or qualified with the plugin's schema.
fn own(name: &[String], schema: &str) -> Result<(), String> {
    match name {
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

struct Cursor<'a> {
    tokens: &'a [&'a Token],
    at: usize,
}

impl Cursor<'_> {
    /// The next token as an upper-cased keyword, if it is an unquoted word.
    fn keyword(&mut self) -> Option<String> {
        let word = match self.tokens.get(self.at) {
            Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => return None,
        };
        self.at += 1;
        Some(word)
    }

    fn peek_is(&self, words: &[&str]) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(w))
            if w.quote_style.is_none() && words.iter().any(|k| w.value.eq_ignore_ascii_case(k)))
    }

    fn skip(&mut self, words: &[&str]) {
        while self.peek_is(words) {
            self.at += 1;
        }
    }

    fn expect(&mut self, word: &str) -> Result<(), String> {
        if self.peek_is(&[word]) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {word} here"))
        }
    }

    fn comma(&mut self) -> bool {
        if matches!(self.tokens.get(self.at), Some(Token::Comma)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    /// Whether the keywords `first` `second` follow each other somewhere after the cursor.
    fn rest_has_pair(&self, first: &str, second: &str) -> bool {
        let is = |t: &Token, k: &str| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
        self.tokens[self.at..]
            .windows(2)
            .any(|pair| is(pair[0], first) && is(pair[1], second))
    }

    /// A possibly qualified name, each part as PostgreSQL resolves it (unquoted parts fold
    /// to lower case).
    fn name(&mut self) -> Result<Vec<String>, String> {
        let mut parts = Vec::new();
        loop {
            match self.tokens.get(self.at) {
                Some(Token::Word(w)) => {
                    parts.push(if w.quote_style.is_some() {
                        w.value.clone()
                    } else {
                        w.value.to_ascii_lowercase()
                    });
                    self.at += 1;
                }
                _ => return Err("expected an object name here".into()),
            }
            if matches!(self.tokens.get(self.at), Some(Token::Period)) {
                self.at += 1;
            } else {
                return Ok(parts);
            }
        }
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
    fn refuses_objects_outside_the_plugin_schema() {
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
            "ALTER TABLE notes SET SCHEMA public",
            "ALTER TABLE notes OWNER TO deploystack",
            "CREATE TABLE other_db.public.t (id int)",
        ] {
            refused(sql);
        }
    }

    #[test]
    fn refuses_what_could_leave_the_role() {
        for sql in [
            "SET ROLE deploystack",
            "RESET ROLE",
            "SET search_path = public",
            "SELECT set_config('role', 'deploystack', true)",
            "CREATE TABLE t (a text DEFAULT set_config('role', 'x', false))",
            "DO $$ BEGIN EXECUTE 'RESET ROLE'; END $$",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "CREATE OR REPLACE TRIGGER t AFTER INSERT ON notes EXECUTE FUNCTION f()",
            "CREATE SCHEMA other",
            "CREATE ROLE admin",
            "CREATE EXTENSION dblink",
            "CREATE TEMP TABLE t (a int)",
            "GRANT ALL ON notes TO PUBLIC",
            "COMMIT",
            "COPY notes FROM PROGRAM 'id'",
            "SELECT * FROM users",
            "INSERT INTO loot SELECT query_to_xml('select set_config(''role'', session_user, true)', false, false, '')::text",
            "INSERT INTO loot SELECT 1 FROM ts_stat('select 1')",
            "CREATE INDEX CONCURRENTLY notes_idx ON notes (id)",
        ] {
            let r = refused(sql);
            assert_eq!(r.statement, 1, "{sql}");
        }
    }

    #[test]
    fn quoted_names_keep_their_case() {
        refused("CREATE TABLE \"Plugin_notes\".t (a int)");
        check("CREATE TABLE PLUGIN_NOTES.t (a int)", SCHEMA).expect("folds to lower case");
        let r = refused("SELECT 'unterminated");
        assert_eq!(r.statement, 0);
    }
}
