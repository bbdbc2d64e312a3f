//! Numbers computed from captured values: `"${heartbeat_ms} * 2 + 500"`.
//!
//! Servers announce their own intervals and limits, so a suite that must
//! run against any of them cannot hard-code a timeout or a count. Numeric
//! step fields ([`Count`]) and the number matchers of patterns accept an
//! arithmetic expression over `${name}` references instead of a number.
//! Expressions are parsed when the file is loaded and evaluated when the
//! step runs.

use crate::pattern::{Captures, InterpolationError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole number, or an expression over captured values that evaluates
/// to one (fractions are rounded up, so a computed wait is never shorter
/// than asked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Count {
    Fixed(u64),
    /// `+ - * /`, parentheses, numbers and `${name}`; a variable must hold
    /// a number or a string that is one.
    Computed(String),
}

impl Count {
    /// The value with `vars` filled in.
    pub fn resolve(&self, vars: &Captures) -> Result<u64, ExprError> {
        match self {
            Count::Fixed(n) => Ok(*n),
            Count::Computed(text) => {
                let value = Expr::parse(text)?.eval(vars)?;
                if !value.is_finite() || value < 0.0 || value > u64::MAX as f64 {
                    return Err(ExprError::NotCount {
                        text: text.clone(),
                        value,
                    });
                }
                Ok(value.ceil() as u64)
            }
        }
    }

    /// A syntax error, found when the file is loaded.
    pub fn check(&self) -> Result<(), ExprError> {
        match self {
            Count::Fixed(_) => Ok(()),
            Count::Computed(text) => Expr::parse(text).map(drop),
        }
    }

    pub fn fixed(&self) -> Option<u64> {
        match self {
            Count::Fixed(n) => Some(*n),
            Count::Computed(_) => None,
        }
    }
}

impl From<u64> for Count {
    fn from(n: u64) -> Count {
        Count::Fixed(n)
    }
}

/// Why an expression has no value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("invalid expression {text:?}: {message}")]
    Syntax { text: String, message: String },
    #[error(transparent)]
    Unknown(#[from] InterpolationError),
    #[error("`${{{name}}}` is {value}, not a number")]
    NotNumber { name: String, value: String },
    #[error("{text:?} divides by zero")]
    DivisionByZero { text: String },
    #[error("{text:?} is {value}, not a count (a whole number of at least 0)")]
    NotCount { text: String, value: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// A parsed arithmetic expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    text: String,
    node: Node,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Number(f64),
    Var(String),
    Neg(Box<Node>),
    Binary(Op, Box<Node>, Box<Node>),
}

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut parser = Parser {
            text,
            rest: text.trim_start(),
        };
        let node = parser.sum()?;
        if !parser.rest.is_empty() {
            return Err(parser.error(&format!("unexpected {:?}", parser.rest)));
        }
        Ok(Expr {
            text: text.to_string(),
            node,
        })
    }

    pub fn eval(&self, vars: &Captures) -> Result<f64, ExprError> {
        self.eval_node(&self.node, vars)
    }

    fn eval_node(&self, node: &Node, vars: &Captures) -> Result<f64, ExprError> {
        Ok(match node {
            Node::Number(n) => *n,
            Node::Var(name) => variable(name, vars)?,
            Node::Neg(inner) => -self.eval_node(inner, vars)?,
            Node::Binary(op, a, b) => {
                let (a, b) = (self.eval_node(a, vars)?, self.eval_node(b, vars)?);
                match op {
                    Op::Add => a + b,
                    Op::Sub => a - b,
                    Op::Mul => a * b,
                    Op::Div if b == 0.0 => {
                        return Err(ExprError::DivisionByZero {
                            text: self.text.clone(),
                        })
                    }
                    Op::Div => a / b,
                }
            }
        })
    }
}

fn variable(name: &str, vars: &Captures) -> Result<f64, ExprError> {
    let value = vars.get(name).ok_or_else(|| InterpolationError::Unknown {
        name: name.to_string(),
        known: vars.keys().cloned().collect(),
    })?;
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
        _ => None,
    };
    number.ok_or_else(|| ExprError::NotNumber {
        name: name.to_string(),
        value: crate::pattern::compact(value, 60),
    })
}

/// Recursive descent over `sum := product (('+'|'-') product)*`,
/// `product := unary (('*'|'/') unary)*`, `unary := '-' unary | atom`.
struct Parser<'a> {
    text: &'a str,
    rest: &'a str,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> ExprError {
        ExprError::Syntax {
            text: self.text.to_string(),
            message: message.to_string(),
        }
    }

    fn eat(&mut self, token: char) -> bool {
        match self.rest.strip_prefix(token) {
            Some(rest) => {
                self.rest = rest.trim_start();
                true
            }
            None => false,
        }
    }

    fn sum(&mut self) -> Result<Node, ExprError> {
        let mut node = self.product()?;
        loop {
            let op = if self.eat('+') {
                Op::Add
            } else if self.eat('-') {
                Op::Sub
            } else {
                return Ok(node);
            };
            node = Node::Binary(op, Box::new(node), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Node, ExprError> {
        let mut node = self.unary()?;
        loop {
            let op = if self.eat('*') {
                Op::Mul
            } else if self.eat('/') {
                Op::Div
            } else {
                return Ok(node);
            };
            node = Node::Binary(op, Box::new(node), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.eat('-') {
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        if self.eat('(') {
            let node = self.sum()?;
            if !self.eat(')') {
                return Err(self.error("missing `)`"));
            }
            return Ok(node);
        }
        if let Some(after) = self.rest.strip_prefix("${") {
            let end = after
                .find('}')
                .ok_or_else(|| self.error("unterminated `${`"))?;
            let name = &after[..end];
            if name.is_empty() || name.contains(['{', '$']) {
                return Err(self.error(&format!("invalid variable name {name:?}")));
            }
            self.rest = after[end + 1..].trim_start();
            return Ok(Node::Var(name.to_string()));
        }
        let digits = self
            .rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(self.rest.len());
        if digits == 0 {
            return Err(self.error(if self.rest.is_empty() {
                "unexpected end"
            } else {
                "expected a number, `${name}` or `(`"
            }));
        }
        let number = self.rest[..digits]
            .parse::<f64>()
            .map_err(|_| self.error(&format!("{:?} is not a number", &self.rest[..digits])))?;
        self.rest = self.rest[digits..].trim_start();
        Ok(Node::Number(number))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Captures {
        [
            ("hb".to_string(), json!(1500)),
            ("given".to_string(), json!(" 20 ")),
            ("word".to_string(), json!("soon")),
        ]
        .into()
    }

    fn eval(text: &str) -> Result<f64, ExprError> {
        Expr::parse(text)?.eval(&vars())
    }

    #[test]
    fn arithmetic_with_precedence_and_variables() {
        assert_eq!(eval("${hb} * 2 + 500").unwrap(), 3500.0);
        assert_eq!(eval("(${hb} + 500) * 2").unwrap(), 4000.0);
        assert_eq!(eval("-${given} + 1").unwrap(), -19.0);
        assert_eq!(eval("10 - 4 - 3").unwrap(), 3.0);
        assert_eq!(eval("7 / 2").unwrap(), 3.5);
        assert_eq!(eval(" 42 ").unwrap(), 42.0);
    }

    #[test]
    fn errors_name_the_problem() {
        assert!(matches!(eval("${hb} *"), Err(ExprError::Syntax { .. })));
        assert!(matches!(eval("(1 + 2"), Err(ExprError::Syntax { .. })));
        assert!(matches!(eval("1 2"), Err(ExprError::Syntax { .. })));
        assert!(matches!(
            eval("${word} + 1"),
            Err(ExprError::NotNumber { .. })
        ));
        assert!(matches!(eval("${nope}"), Err(ExprError::Unknown(_))));
        assert!(matches!(
            eval("1 / (2 - 2)"),
            Err(ExprError::DivisionByZero { .. })
        ));
    }

    #[test]
    fn counts_round_up_and_refuse_negatives() {
        let count = |text: &str| Count::Computed(text.into()).resolve(&vars());
        assert_eq!(count("${hb} / 1000").unwrap(), 2);
        assert_eq!(Count::Fixed(7).resolve(&vars()).unwrap(), 7);
        assert!(matches!(
            count("1 - ${given}"),
            Err(ExprError::NotCount { .. })
        ));
    }
}
