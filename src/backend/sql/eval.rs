//! rlm_sql's authorize step as FreeRADIUS 3.2 runs it, over rows already read: sans-IO, no
//! clock (the time comes in), no database. Rows in, the control and reply lists out.
//!
//! * The user's check items (`radcheck`) must all match the request (`paircompare`): `:=` and
//!   `+=` always match; `=` compares as `==`; `==`, `!=`, `<`, `<=`, `>`, `>=`, `=~`, `!~`,
//!   `=*`, `!*` compare with the request's attribute of that name (any of its values);
//!   Crypt-Password and Auth-Type are never compared; Expiration compares with the time (it
//!   matches while not expired); SQL-Group with the user's groups. On a match they are moved
//!   into the control list and the user's reply items (`radreply`) into the reply list.
//! * With no user check rows the user's reply rows are not read at all (as in FreeRADIUS).
//! * Then, unless the user's reply said `Fall-Through = No`, the groups of `radusergroup` in
//!   priority order: a group whose check items do not match is skipped; a group that matches
//!   has its check items moved into the control list and its reply items into the reply
//!   list, and processing goes on to the next group only if its reply said
//!   `Fall-Through = Yes`.
//! * Moving a list into another follows `radius_pairmove`: `:=` replaces the first item of
//!   that attribute (else appends), `=` appends unless the attribute is there, `+=` appends,
//!   `^=` prepends, `-=` removes equal values, `==` keeps only equal values, `<=`/`>=` clamp,
//!   `!*` removes the attribute; the operators apply to the list as it was before the move.
//! * The user is found when any check row, reply row (read) or group membership exists.

use std::cmp::Ordering;

use crate::dict::{AttrKey, AttrType, Dictionary};

use super::items::{parse_rows, Attr, Item, Server};
use super::rows::{Op, RawRow, RowError};

/// What the database holds for one user: the rows of every table rlm_sql reads, groups in
/// `radusergroup` priority order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserRows {
    pub check: Vec<RawRow>,
    pub reply: Vec<RawRow>,
    pub groups: Vec<GroupRows>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupRows {
    pub name: String,
    pub check: Vec<RawRow>,
    pub reply: Vec<RawRow>,
}

/// The request as check items see it: its attributes (standard ones by type, vendor ones
/// by vendor and type) and, when the request has one, the revealed User-Password.
#[derive(Debug, Clone, Default)]
pub struct RequestView<'r> {
    pub attrs: Vec<(AttrKey, &'r [u8])>,
}

impl<'r> RequestView<'r> {
    fn values(&self, key: AttrKey) -> impl Iterator<Item = &'r [u8]> + '_ {
        self.attrs
            .iter()
            .filter(move |(k, _)| *k == key)
            .map(|&(_, v)| v)
    }

    fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }
}

/// rlm_sql's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluated {
    /// Some row or group membership names the user (rlm_sql's `ok` or `noop`, not `notfound`).
    pub found: bool,
    /// The control ("config") list: known-good passwords, Auth-Type, Expiration, …
    pub control: Vec<Item>,
    /// The reply list (Fall-Through included; it is never sent).
    pub reply: Vec<Item>,
    /// Every group the user is a member of, for network policies.
    pub groups: Vec<String>,
}

/// `Fall-Through` as rlm_sql reads it from a reply list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FallThrough {
    No,
    Yes,
    Default,
}

/// rlm_sql's authorize over `rows` for `request` at `now` (Unix seconds). Unusable rows
/// (unknown attributes, values that do not parse) fail it, as they fail FreeRADIUS's query.
pub fn evaluate(
    rows: &UserRows,
    request: &RequestView<'_>,
    dict: &Dictionary,
    now: u64,
) -> Result<Evaluated, RowError> {
    let groups: Vec<String> = rows.groups.iter().map(|g| g.name.clone()).collect();
    let env = Env {
        request,
        dict,
        now,
        groups: &groups,
    };
    let mut out = Evaluated {
        groups: groups.clone(),
        ..Evaluated::default()
    };
    let mut fall = FallThrough::Default;
    let check = parse_rows(&rows.check, dict)?;
    if !check.is_empty() {
        out.found = true;
        if env.matches(&check) {
            pairmove(&mut out.control, check);
            let reply = parse_rows(&rows.reply, dict)?;
            if !reply.is_empty() {
                fall = fall_through(&reply);
                pairmove(&mut out.reply, reply);
            }
        }
    }
    if fall != FallThrough::No && !rows.groups.is_empty() {
        out.found = true;
        groups_in_order(&env, &rows.groups, &mut out)?;
    }
    Ok(out)
}

/// The groups, in priority order, until one that matched does not say `Fall-Through = Yes`.
fn groups_in_order(
    env: &Env<'_>,
    groups: &[GroupRows],
    out: &mut Evaluated,
) -> Result<(), RowError> {
    for g in groups {
        let check = parse_rows(&g.check, env.dict)?;
        if !check.is_empty() && !env.matches(&check) {
            continue;
        }
        pairmove(&mut out.control, check);
        let reply = parse_rows(&g.reply, env.dict)?;
        let fall = fall_through(&reply);
        pairmove(&mut out.reply, reply);
        if fall != FallThrough::Yes {
            break;
        }
    }
    Ok(())
}

fn fall_through(reply: &[Item]) -> FallThrough {
    let number = |i: &Item| i.value.as_slice().try_into().ok().map(u32::from_be_bytes);
    match reply
        .iter()
        .find(|i| i.attr == Attr::Server(Server::FallThrough))
        .and_then(number)
    {
        None | Some(2) => FallThrough::Default,
        Some(0) => FallThrough::No,
        Some(_) => FallThrough::Yes,
    }
}

/// What check items are compared with.
struct Env<'e> {
    request: &'e RequestView<'e>,
    dict: &'e Dictionary,
    now: u64,
    groups: &'e [String],
}

impl Env<'_> {
    /// `paircompare`: every check item matches.
    fn matches(&self, check: &[Item]) -> bool {
        check.iter().all(|c| self.item_matches(c))
    }

    fn item_matches(&self, c: &Item) -> bool {
        if c.op.sets() {
            return true;
        }
        match &c.attr {
            Attr::Server(Server::CryptPassword | Server::AuthType) => true,
            // Registered comparisons (rlm_expiration, rlm_sql's group): a value computed
            // from the item, then the operator applied to it.
            Attr::Server(Server::Expiration) => self.computed(c, || {
                let at = be_u32(&c.value).map_or(0, u64::from);
                if self.now <= at {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }),
            Attr::Server(Server::SqlGroup) => self.computed(c, || {
                if self.groups.iter().any(|g| g.as_bytes() == c.value) {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }),
            // Never in a request: only "absent" matches.
            Attr::Server(_) => c.op == Op::Absent,
            Attr::Radius { key, ty, .. } => self.radius_matches(c, *key, *ty),
        }
    }

    /// A registered comparison: needs some request attribute to be present (FreeRADIUS looks
    /// for "any" attribute), then `order` against the operator.
    fn computed(&self, c: &Item, order: impl FnOnce() -> Ordering) -> bool {
        match c.op {
            _ if self.request.is_empty() => c.op == Op::Absent,
            Op::Absent => false,
            Op::Present => true,
            op => op_accepts(op, order()),
        }
    }

    fn radius_matches(&self, c: &Item, key: AttrKey, ty: AttrType) -> bool {
        let mut values = self.request.values(key).peekable();
        if key == AttrKey::standard(u32::from(crate::proto::USER_PASSWORD))
            && values.peek().is_none()
        {
            // The CHAP hack: without a User-Password there is nothing to compare.
            return true;
        }
        match (c.op, values.peek().is_some()) {
            (Op::Absent, present) => !present,
            (_, false) => false,
            (Op::Present, true) => true,
            (op, true) => values.any(|v| match op {
                Op::RegEq | Op::RegNe => self.regex_matches(c, ty, v) == (op == Op::RegEq),
                op => op_accepts(op, compare(ty, v, &c.value)),
            }),
        }
    }

    /// The request value's text against the item's regular expression (case-sensitive; a
    /// pattern that does not compile matches nothing).
    fn regex_matches(&self, c: &Item, ty: AttrType, value: &[u8]) -> bool {
        let text = |v: &[u8]| -> String {
            match (ty, self.dict_def(c)) {
                (AttrType::String, _) | (_, None) => String::from_utf8_lossy(v).into_owned(),
                (_, Some(def)) => {
                    let mut s = String::new();
                    self.dict.format_def(def, v, &mut s);
                    s
                }
            }
        };
        let pattern = if ty == AttrType::String {
            c.text.clone()
        } else {
            text(&c.value)
        };
        let Ok(re) = regex::RegexBuilder::new(&pattern)
            .size_limit(1 << 20)
            .build()
        else {
            return false;
        };
        re.is_match(&text(value))
    }

    fn dict_def(&self, c: &Item) -> Option<&crate::dict::AttrDef> {
        match &c.attr {
            Attr::Radius { key, .. } => self.dict.by_key(*key),
            Attr::Server(_) => None,
        }
    }
}

/// Whether `op` accepts a request value ordered `order` against the check value (`=` and
/// unknown operators compare as `==`, as FreeRADIUS "reverts" them).
fn op_accepts(op: Op, order: Ordering) -> bool {
    match op {
        Op::Ne => order != Ordering::Equal,
        Op::Lt => order == Ordering::Less,
        Op::Gt => order == Ordering::Greater,
        Op::Le => order != Ordering::Greater,
        Op::Ge => order != Ordering::Less,
        _ => order == Ordering::Equal,
    }
}

fn be_u32(v: &[u8]) -> Option<u32> {
    v.try_into().ok().map(u32::from_be_bytes)
}

/// Two wire values of one attribute type, ordered as `radius_compare_vps` orders them:
/// numbers and addresses by value, strings and the rest by their octets (octets of
/// different lengths are never equal).
pub fn compare(ty: AttrType, vp: &[u8], check: &[u8]) -> Ordering {
    fn uint(v: &[u8]) -> Option<u64> {
        (v.len() <= 8).then(|| v.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))
    }
    match ty {
        AttrType::Integer
        | AttrType::Byte
        | AttrType::Short
        | AttrType::Integer64
        | AttrType::Date
        | AttrType::IpAddr => match (uint(vp), uint(check)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => vp.cmp(check),
        },
        AttrType::Signed => match (vp.try_into(), check.try_into()) {
            (Ok(a), Ok(b)) => i32::from_be_bytes(a).cmp(&i32::from_be_bytes(b)),
            _ => vp.cmp(check),
        },
        AttrType::Octets if vp.len() != check.len() => Ordering::Greater,
        _ => vp.cmp(check),
    }
}

/// Two items' values (the "to" list's against the "from" list's), for `-=`, `==`, `<=`, `>=`.
fn compare_items(to: &Item, from: &Item) -> Ordering {
    match &to.attr {
        Attr::Radius { ty, .. } => compare(*ty, &to.value, &from.value),
        Attr::Server(_) => to.value.cmp(&from.value),
    }
}

/// `radius_pairmove(to, from)`: see the module documentation.
pub fn pairmove(to: &mut Vec<Item>, from: Vec<Item>) {
    let mut slots: Vec<Option<Item>> = std::mem::take(to).into_iter().map(Some).collect();
    let mut edited = vec![false; slots.len()];
    let mut prepend: Vec<Item> = Vec::new();
    let mut append: Vec<Item> = Vec::new();
    for f in from {
        match f.op {
            Op::Add => append.push(f),
            // Each `^=` goes before the ones already prepended.
            Op::Prepend => prepend.insert(0, f),
            _ => {
                if let Some(f) = move_one(&mut slots, &mut edited, f) {
                    append.push(f);
                }
            }
        }
    }
    to.extend(prepend);
    to.extend(slots.into_iter().flatten());
    to.extend(append);
}

/// One item of the "from" list against the "to" list as it was: `Some(item)` when it is
/// appended.
fn move_one(slots: &mut [Option<Item>], edited: &mut [bool], f: Item) -> Option<Item> {
    let mut f = Some(f);
    let mut found = false;
    for j in 0..slots.len() {
        let (Some(from), Some(to)) = (f.as_ref(), slots[j].as_ref()) else {
            continue;
        };
        if edited[j] || !from.attr.same(&to.attr) {
            continue;
        }
        let order = compare_items(to, from);
        match from.op {
            Op::Set => {
                slots[j] = f.take();
                edited[j] = true;
            }
            Op::Eq => {
                found = true;
                break;
            }
            Op::Absent => slots[j] = None,
            Op::Sub if order == Ordering::Equal => slots[j] = None,
            Op::CmpEq if order != Ordering::Equal => slots[j] = None,
            Op::Le if order == Ordering::Greater => {
                slots[j] = f.take();
                edited[j] = true;
            }
            Op::Ge if order == Ordering::Less => {
                slots[j] = f.take();
                edited[j] = true;
            }
            Op::Sub | Op::CmpEq | Op::Le | Op::Ge => {}
            // FreeRADIUS asserts on these in a list move; here they do nothing.
            _ => break,
        }
    }
    let f = f?;
    (!found && matches!(f.op, Op::Eq | Op::Le | Op::Ge | Op::Set)).then_some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::sql::authorize::{authorize, Decided};

    fn r(a: &str, op: &str, v: &str) -> RawRow {
        RawRow::new(a, op, v)
    }

    const NAS_IP: AttrKey = AttrKey::standard(4);

    fn request(nas: &[u8; 4]) -> RequestView<'_> {
        RequestView {
            attrs: vec![(AttrKey::standard(1), b"alice"), (NAS_IP, nas)],
        }
    }

    /// The reply as (name, text) pairs.
    fn reply(e: &Evaluated) -> Vec<(String, String)> {
        e.reply
            .iter()
            .map(|i| (i.attr.name().to_string(), i.text.clone()))
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn eval(rows: &UserRows, nas: &[u8; 4]) -> Evaluated {
        evaluate(rows, &request(nas), &Dictionary::builtin(), 1_000).unwrap()
    }

    #[test]
    fn user_check_then_reply() {
        let rows = UserRows {
            check: vec![
                r("Cleartext-Password", ":=", "pw"),
                r("NAS-IP-Address", "==", "10.0.0.1"),
            ],
            reply: vec![r("Reply-Message", ":=", "hello"), r("Class", "+=", "a")],
            groups: vec![],
        };
        let e = eval(&rows, &[10, 0, 0, 1]);
        assert!(e.found);
        assert_eq!(e.control.len(), 1, "only the := item is kept in control");
        assert_eq!(e.control[0].attr, Attr::Server(Server::CleartextPassword));
        assert_eq!(
            reply(&e),
            pairs(&[("Reply-Message", "hello"), ("Class", "a")])
        );
        // Another NAS: the check fails, nothing is set, but the user is found.
        let e = eval(&rows, &[10, 0, 0, 2]);
        assert!(e.found && e.control.is_empty() && e.reply.is_empty());
    }

    #[test]
    fn equals_in_a_check_list_compares() {
        // The classic mistake: `Cleartext-Password = x` is compared with the request.
        let rows = UserRows {
            check: vec![r("Cleartext-Password", "=", "pw")],
            ..UserRows::default()
        };
        assert!(eval(&rows, &[10, 0, 0, 1]).control.is_empty());
        let rows = UserRows {
            check: vec![r("Cleartext-Password", "!*", "ANY")],
            ..UserRows::default()
        };
        assert!(eval(&rows, &[10, 0, 0, 1]).found);
    }

    #[test]
    fn unknown_users_and_reply_only_users() {
        assert!(!eval(&UserRows::default(), &[10, 0, 0, 1]).found);
        // Without check rows the reply rows are not read (as in FreeRADIUS).
        let rows = UserRows {
            reply: vec![r("Reply-Message", ":=", "x")],
            ..UserRows::default()
        };
        let e = eval(&rows, &[10, 0, 0, 1]);
        assert!(!e.found && e.reply.is_empty());
    }

    fn group(name: &str, check: Vec<RawRow>, reply: Vec<RawRow>) -> GroupRows {
        GroupRows {
            name: name.into(),
            check,
            reply,
        }
    }

    #[test]
    fn groups_by_priority_with_fall_through() {
        let rows = UserRows {
            check: vec![r("Cleartext-Password", ":=", "pw")],
            reply: vec![],
            groups: vec![
                group(
                    "other-nas",
                    vec![r("NAS-IP-Address", "==", "10.9.9.9")],
                    vec![r("Reply-Message", ":=", "never")],
                ),
                group(
                    "staff",
                    vec![],
                    vec![
                        r("Session-Timeout", ":=", "100"),
                        r("Fall-Through", "=", "Yes"),
                    ],
                ),
                group(
                    "vpn",
                    vec![],
                    vec![r("Session-Timeout", ":=", "200"), r("Class", "+=", "vpn")],
                ),
                group(
                    "last",
                    vec![],
                    vec![r("Reply-Message", ":=", "not reached")],
                ),
            ],
        };
        let e = eval(&rows, &[10, 0, 0, 1]);
        assert_eq!(
            reply(&e),
            pairs(&[
                ("Session-Timeout", "200"),
                ("Fall-Through", "Yes"),
                ("Class", "vpn")
            ])
        );
        assert_eq!(e.groups, ["other-nas", "staff", "vpn", "last"]);
        // No Fall-Through in the first matching group: it is the only one.
        let mut rows = rows;
        rows.groups[1].reply.pop();
        assert_eq!(
            reply(&eval(&rows, &[10, 0, 0, 1])),
            pairs(&[("Session-Timeout", "100")])
        );
        // The user's own `Fall-Through = No` keeps groups out.
        rows.reply = vec![r("Fall-Through", ":=", "No")];
        assert_eq!(
            reply(&eval(&rows, &[10, 0, 0, 1])),
            pairs(&[("Fall-Through", "No")])
        );
    }

    #[test]
    fn a_group_may_supply_the_password_even_when_the_user_check_fails() {
        let rows = UserRows {
            check: vec![r("NAS-IP-Address", "==", "10.9.9.9")],
            reply: vec![r("Reply-Message", ":=", "user")],
            groups: vec![group(
                "g",
                vec![r("Cleartext-Password", ":=", "gpw")],
                vec![],
            )],
        };
        let e = eval(&rows, &[10, 0, 0, 1]);
        assert!(e.reply.is_empty());
        assert_eq!(e.control.len(), 1);
    }

    #[test]
    fn list_operators_as_pairmove() {
        let rows = UserRows {
            check: vec![r("Auth-Type", ":=", "Accept")],
            reply: vec![
                r("Class", "+=", "a"),
                r("Class", "+=", "b"),
                r("Session-Timeout", "=", "10"),
                r("Reply-Message", "=", "first"),
            ],
            groups: vec![group(
                "g",
                vec![],
                vec![
                    r("Session-Timeout", "=", "20"),
                    r("Reply-Message", ":=", "replaced"),
                    r("Reply-Message", "=", "appended"),
                    r("Class", "-=", "a"),
                    r("Idle-Timeout", "^=", "5"),
                    r("Session-Timeout", "<=", "5"),
                ],
            )],
        };
        let e = eval(&rows, &[10, 0, 0, 1]);
        assert_eq!(
            reply(&e),
            pairs(&[
                ("Idle-Timeout", "5"),
                ("Class", "b"),
                ("Session-Timeout", "5"),
                ("Reply-Message", "replaced"),
                ("Reply-Message", "appended"),
            ])
        );
        let mut to = parse_rows(
            &[r("Class", "=", "x"), r("Class", "=", "y")],
            &Dictionary::builtin(),
        )
        .unwrap();
        pairmove(
            &mut to,
            parse_rows(&[r("Class", "==", "y")], &Dictionary::builtin()).unwrap(),
        );
        assert_eq!(to.len(), 1);
        pairmove(
            &mut to,
            parse_rows(&[r("Class", "!*", "")], &Dictionary::builtin()).unwrap(),
        );
        assert!(to.is_empty());
    }

    #[test]
    fn comparison_operators() {
        let check = |op: &str, v: &str| {
            let rows = UserRows {
                check: vec![
                    r("Cleartext-Password", ":=", "pw"),
                    r("NAS-IP-Address", op, v),
                ],
                ..UserRows::default()
            };
            !eval(&rows, &[10, 0, 0, 5]).control.is_empty()
        };
        assert!(check("==", "10.0.0.5"));
        assert!(check("=", "10.0.0.5"));
        assert!(!check("!=", "10.0.0.5"));
        assert!(check(">", "10.0.0.4") && !check(">", "10.0.0.5"));
        assert!(check(">=", "10.0.0.5") && check("<=", "10.0.0.5"));
        assert!(check("<", "10.0.0.6") && !check("<", "9.0.0.6"));
        assert!(check("=*", "10.0.0.1") && !check("!*", "10.0.0.1"));
        // A regular expression must parse as the attribute's type, as in FreeRADIUS.
        assert!(parse_rows(&[r("NAS-IP-Address", "=~", "^10")], &Dictionary::builtin()).is_err());
        let user = |op: &str, v: &str| {
            let rows = UserRows {
                check: vec![r("Cleartext-Password", ":=", "pw"), r("User-Name", op, v)],
                ..UserRows::default()
            };
            !eval(&rows, &[10, 0, 0, 5]).control.is_empty()
        };
        assert!(user("=~", "^ali") && !user("=~", "^bob") && user("!~", "^bob"));
        assert!(!user("=~", "(unclosed"), "a bad pattern matches nothing");
        // Attributes the request lacks: only !* matches.
        let rows = UserRows {
            check: vec![
                r("Cleartext-Password", ":=", "pw"),
                r("Called-Station-Id", "!*", ""),
            ],
            ..UserRows::default()
        };
        assert!(!eval(&rows, &[10, 0, 0, 5]).control.is_empty());
    }

    #[test]
    fn expiration_compared_and_set() {
        let dict = Dictionary::builtin();
        let rows = |op: &str| UserRows {
            check: vec![
                r("Cleartext-Password", ":=", "pw"),
                r("Expiration", op, "Jan  1 2030 00:00:00"),
            ],
            ..UserRows::default()
        };
        let at = 1_893_456_000u64;
        let before = evaluate(&rows("=="), &request(&[10, 0, 0, 1]), &dict, at - 10).unwrap();
        assert_eq!(before.control.len(), 1, "== matches while not expired");
        let after = evaluate(&rows("=="), &request(&[10, 0, 0, 1]), &dict, at + 10).unwrap();
        assert!(after.control.is_empty());
        // := sets it in control: rlm_expiration rejects after, caps Session-Timeout before.
        let set = evaluate(&rows(":="), &request(&[10, 0, 0, 1]), &dict, at + 10).unwrap();
        assert!(matches!(
            authorize(set, at + 10).decided,
            Decided::Reject(crate::vocab::RejectReason::AccountExpired)
        ));
        let set = evaluate(&rows(":="), &request(&[10, 0, 0, 1]), &dict, at - 10).unwrap();
        let a = authorize(set, at - 10);
        assert!(matches!(a.decided, Decided::Check(_)));
        assert_eq!(a.reply, pairs(&[("Session-Timeout", "10")]));
    }

    #[test]
    fn auth_type_and_passwords() {
        let dict = Dictionary::builtin();
        let decide = |check: Vec<RawRow>| {
            let rows = UserRows {
                check,
                ..UserRows::default()
            };
            authorize(
                evaluate(&rows, &request(&[10, 0, 0, 1]), &dict, 0).unwrap(),
                0,
            )
        };
        assert!(matches!(
            decide(vec![r("Auth-Type", ":=", "Accept")]).decided,
            Decided::Accept
        ));
        assert!(matches!(
            decide(vec![
                r("Auth-Type", ":=", "Reject"),
                r("Cleartext-Password", ":=", "x")
            ])
            .decided,
            Decided::Reject(_)
        ));
        assert!(matches!(
            decide(vec![r("Auth-Type", ":=", "Local")]).decided,
            Decided::Reject(_)
        ));
        let a = decide(vec![
            r("Password-With-Header", ":=", "{SSHA}AAAA"),
            r("NT-Password", ":=", "0011"),
        ]);
        let Decided::Check(p) = a.decided else {
            panic!()
        };
        assert_eq!(
            p.pap.as_ref().map(|k| k.kind()),
            Some("NT-Password"),
            "the converted header goes last"
        );
        assert!(p.cleartext.is_none());
        let a = decide(vec![
            r("Cleartext-Password", ":=", "pw"),
            r("Simultaneous-Use", ":=", "2"),
        ]);
        assert_eq!(a.simultaneous_use, Some(2));
        let Decided::Check(p) = a.decided else {
            panic!()
        };
        assert_eq!(p.nt.as_ref().map(|k| k.kind()), Some("Cleartext-Password"));
    }

    #[test]
    fn unusable_rows_fail_the_lookup() {
        let rows = UserRows {
            check: vec![r("Cleartext-Password", ":=", "pw")],
            reply: vec![r("No-Such-Attribute", ":=", "x")],
            ..UserRows::default()
        };
        assert!(evaluate(&rows, &request(&[10, 0, 0, 1]), &Dictionary::builtin(), 0).is_err());
    }
}
