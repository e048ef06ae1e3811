//! The adversarial input of [`super::fuzz`]: a seeded generator of JSON-RPC frames.

use serde_json::{Map, Value, json};

/// Methods a client may send, plus ones that do not exist.
const METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "tasks/get",
    "tasks/cancel",
    "server/discover",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "no/such/method",
    "",
    "tools/call/../../x",
];

/// Strings that have broken parsers and path handling before.
const HOSTILE: &[&str] = &[
    "",
    ".",
    "..",
    "/",
    "../../../../etc/passwd",
    "/etc/shadow",
    "/proc/self/root/etc/hostname",
    "/dev/zero",
    "a\0b",
    "\u{202e}evil",
    "((((((((((",
    "$(rm -rf /)",
    "`id`",
    "*",
    "**/*",
    "[",
    "\\",
    "%s%n%x",
    "\u{feff}",
    "é😀",
    "-1",
    "1e309",
    "NaN",
    "null",
    "true",
    "~",
    "\r\n",
];

/// xorshift64*: tiny, seedable, good enough to pick test input.
#[derive(Debug, Clone)]
pub(super) struct Generator<'a> {
    state: u64,
    tools: &'a [(String, Value)],
}

impl<'a> Generator<'a> {
    pub(super) fn new(seed: u64, tools: &'a [(String, Value)]) -> Self {
        // Never zero, and nearby seeds diverge at once.
        let state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        Self { state, tools }
    }

    fn next(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// `count` frames (each one line's bytes, without the newline).
    pub(super) fn session(&mut self, count: usize) -> Vec<Vec<u8>> {
        (0..count).map(|_| self.frame()).collect()
    }

    fn frame(&mut self) -> Vec<u8> {
        match self.below(20) {
            0 => self.raw_bytes(),
            1 => self.broken_json(),
            2 => self.json(4).to_string().into_bytes(),
            3 => self.deep_nesting(),
            4 => self.huge(),
            5 => json!([self.request(), self.request()])
                .to_string()
                .into_bytes(), // a batch
            6 => self.response().to_string().into_bytes(),
            7 => self.notification().to_string().into_bytes(),
            8..=12 if !self.tools.is_empty() => self.tool_call().to_string().into_bytes(),
            _ => self.request().to_string().into_bytes(),
        }
    }

    fn raw_bytes(&mut self) -> Vec<u8> {
        let len = self.below(200);
        // No newline: one frame is one line.
        (0..len)
            .map(|_| (self.next() as u8).max(1))
            .filter(|b| *b != b'\n')
            .collect()
    }

    fn broken_json(&mut self) -> Vec<u8> {
        let mut text = self.request().to_string().into_bytes();
        match self.below(4) {
            0 => text.truncate(self.below(text.len())),
            1 => {
                let at = self.below(text.len());
                text[at] = self.pick(&[b'{', b'}', b'"', b',', b':', 0xff, 0xc3]);
            }
            2 => text.extend_from_slice(b"}}]]"),
            _ => text
                .splice(0..0, *b"\xef\xbb\xbf\xef\xbb\xbf")
                .for_each(drop),
        }
        text.retain(|b| *b != b'\n');
        text
    }

    fn deep_nesting(&mut self) -> Vec<u8> {
        let depth = self.pick(&[100, 129, 1_000, 100_000]);
        let (open, close) = self.pick(&[(b'[', b']'), (b'{', b'}')]);
        let mut text = Vec::with_capacity(depth * 2 + 64);
        text.extend_from_slice(br#"{"jsonrpc":"2.0","id":7,"method":"ping","params":"#);
        if open == b'{' {
            for _ in 0..depth {
                text.extend_from_slice(br#"{"a":"#);
            }
            text.extend_from_slice(b"1");
        } else {
            text.extend(std::iter::repeat_n(open, depth));
        }
        if self.chance(70) {
            text.extend(std::iter::repeat_n(close, depth));
            text.push(b'}');
        }
        text
    }

    fn huge(&mut self) -> Vec<u8> {
        match self.below(3) {
            // Past rmcp's 16 MiB line limit: dropped, the connection stays usable.
            0 => vec![b'x'; 17 * 1024 * 1024],
            1 => json!({"jsonrpc": "2.0", "id": 9, "method": "ping",
                        "params": {"blob": "y".repeat(2 * 1024 * 1024)}})
            .to_string()
            .into_bytes(),
            _ => format!(
                r#"{{"jsonrpc":"2.0","id":{},"method":"ping"}}"#,
                "9".repeat(5000)
            )
            .into_bytes(),
        }
    }

    fn id(&mut self) -> Option<Value> {
        match self.below(10) {
            0 => None,
            1 => Some(Value::Null),
            2 => Some(json!(-1)),
            3 => Some(json!(u64::MAX)),
            4 => Some(json!(1.5)),
            5 => Some(json!({"nested": [1]})),
            6 => Some(json!(self.string())),
            _ => Some(json!(self.below(1000))),
        }
    }

    fn version(&mut self) -> Option<Value> {
        match self.below(12) {
            0 => None,
            1 => Some(json!("1.0")),
            2 => Some(json!(2.0)),
            _ => Some(json!("2.0")),
        }
    }

    fn message(&mut self, method: Option<&str>, params: Option<Value>, id: Option<Value>) -> Value {
        let mut object = Map::new();
        if let Some(version) = self.version() {
            object.insert("jsonrpc".into(), version);
        }
        if let Some(id) = id {
            object.insert("id".into(), id);
        }
        if let Some(method) = method {
            object.insert("method".into(), json!(method));
        }
        if let Some(params) = params {
            object.insert("params".into(), params);
        }
        Value::Object(object)
    }

    fn request(&mut self) -> Value {
        let method = if self.chance(85) {
            self.pick(METHODS).to_owned()
        } else {
            self.string()
        };
        let params = match self.below(5) {
            0 => None,
            1 => Some(self.json(3)),
            2 => Some(json!({"cursor": self.json(1)})),
            3 => Some(
                json!({"name": self.string(), "uri": self.string(), "level": self.string(),
                             "protocolVersion": self.string(), "requestId": self.id()}),
            ),
            _ => Some(json!({})),
        };
        let id = self.id();
        self.message(Some(&method), params, id)
    }

    fn notification(&mut self) -> Value {
        let method = self.pick(&[
            "notifications/cancelled",
            "notifications/progress",
            "notifications/initialized",
            "notifications/unknown",
        ]);
        let params = json!({"requestId": self.id(), "reason": self.string(),
                            "progressToken": self.id(), "progress": self.json(0)});
        self.message(Some(method), Some(params), None)
    }

    /// A response or error for a request the server never sent.
    fn response(&mut self) -> Value {
        let id = self.id();
        let mut value = self.message(None, None, id);
        if let Value::Object(object) = &mut value {
            if self.chance(50) {
                object.insert("result".into(), self.json(2));
            } else {
                object.insert(
                    "error".into(),
                    json!({"code": self.json(0), "message": self.json(0)}),
                );
            }
        }
        value
    }

    fn tool_call(&mut self) -> Value {
        let index = self.below(self.tools.len());
        let (name, schema) = (self.tools[index].0.clone(), self.tools[index].1.clone());
        let arguments = match self.below(6) {
            0 => self.json(2),
            1 => Value::Null,
            _ => self.arguments(&schema),
        };
        let name = if self.chance(5) { self.string() } else { name };
        let id = Some(json!(self.below(1_000_000)));
        self.message(
            Some("tools/call"),
            Some(json!({"name": name, "arguments": arguments})),
            id,
        )
    }

    /// An object with the schema's properties (some left out, some extra), each value
    /// well-typed, mistyped or hostile.
    fn arguments(&mut self, schema: &Value) -> Value {
        let mut object = Map::new();
        if let Some(properties) = schema["properties"].as_object() {
            for (key, property) in properties {
                if self.chance(75) {
                    let value = self.value_for(property);
                    object.insert(key.clone(), value);
                }
            }
        }
        if self.chance(20) {
            object.insert(self.string(), self.json(1));
        }
        Value::Object(object)
    }

    fn value_for(&mut self, property: &Value) -> Value {
        let kind = property["type"]
            .as_str()
            .or_else(|| {
                property["type"]
                    .as_array()
                    .and_then(|t| t.first()?.as_str())
            })
            .unwrap_or("");
        if self.chance(25) {
            return self.json(1); // any type at all
        }
        match kind {
            "string" => json!(self.string()),
            "integer" => json!(self.pick(&[0i64, 1, 2, 10, -1, i64::MAX, i64::MIN, 1 << 40])),
            "number" => json!(self.pick(&[0.0, 0.5, -1.0, 1e300, f64::MIN_POSITIVE])),
            "boolean" => json!(self.chance(50)),
            "array" => {
                let len = self.pick(&[0, 1, 3, 10_000]);
                let item = &property["items"];
                Value::Array((0..len).map(|_| self.value_for(item)).collect())
            }
            "object" => self.arguments(property),
            _ => self.json(1),
        }
    }

    fn string(&mut self) -> String {
        match self.below(4) {
            0 | 1 => self.pick(HOSTILE).to_owned(),
            2 => "a".repeat(self.pick(&[1, 255, 4096, 70_000])),
            _ => (0..self.below(24))
                .map(|_| char::from_u32((self.next() % 0x2FFF) as u32).unwrap_or('?'))
                .collect(),
        }
    }

    fn json(&mut self, depth: u32) -> Value {
        match self.below(if depth == 0 { 5 } else { 7 }) {
            0 => Value::Null,
            1 => json!(self.chance(50)),
            2 => json!(self.pick(&[0i64, -1, i64::MAX, i64::MIN])),
            3 => json!(self.pick(&[0.1, -0.0, 1e308])),
            4 => json!(self.string()),
            5 => Value::Array((0..self.below(4)).map(|_| self.json(depth - 1)).collect()),
            _ => Value::Object(
                (0..self.below(4))
                    .map(|_| (self.string(), self.json(depth - 1)))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_frames() {
        let tools = vec![(
            "echo".to_owned(),
            json!({"properties": {"text": {"type": "string"}}}),
        )];
        let a = Generator::new(7, &tools).session(30);
        let b = Generator::new(7, &tools).session(30);
        let c = Generator::new(8, &tools).session(30);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|frame| !frame.contains(&b'\n')));
    }
}
