//! A pickle virtual machine for the opcodes that `torch.save` emits with
//! pickle protocols 2 to 5.
//!
//! The machine builds a graph of [`Node`]s in an arena rather than a tree,
//! because pickles share objects through the memo and mutate containers
//! after memoizing them. Dropping the arena is flat, so hostile nesting
//! cannot overflow the stack here; the conversion to [`Value`] in
//! `materialize.rs` enforces the depth and size limits.
//!
//! [`Value`]: super::Value

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};

use super::storage::{StorageRef, TensorSpec};
use super::torch_objects::{self, Global};

/// Index of a node in [`Graph::nodes`].
pub(crate) type NodeId = usize;

/// An object on the pickle machine's stack or in its memo.
#[derive(Debug)]
pub(crate) enum Node {
    None,
    Bool(bool),
    /// Pickle integers are unbounded; 128 bits cover every integer that
    /// `torch.save` writes, including the legacy format's 80-bit magic number.
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<NodeId>),
    Tuple(Vec<NodeId>),
    Dict(Vec<(NodeId, NodeId)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorSpec),
}

impl Node {
    /// Returns the Python type name of the node, for messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Node::None => "None",
            Node::Bool(_) => "bool",
            Node::Int(_) => "int",
            Node::Float(_) => "float",
            Node::Str(_) => "str",
            Node::Bytes(_) => "bytes",
            Node::List(_) => "list",
            Node::Tuple(_) => "tuple",
            Node::Dict(_) => "dict",
            Node::Global(_) => "global",
            Node::Storage(_) => "storage",
            Node::Tensor(_) => "tensor",
        }
    }
}

/// The objects of one unpickled pickle and the id of the object it returns.
#[derive(Debug)]
pub(crate) struct Graph {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

impl Graph {
    pub(crate) fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    /// Returns every storage that the pickle refers to, in order of first use.
    pub(crate) fn storages(&self) -> impl Iterator<Item = &StorageRef> {
        self.nodes.iter().filter_map(|node| match node {
            Node::Storage(storage) => Some(storage),
            Node::Tensor(spec) => Some(&spec.storage),
            _ => None,
        })
    }
}

/// Unpickles one pickle from the start of `data`.
///
/// Returns the graph and the number of bytes up to and including the STOP
/// opcode, so that a caller can read pickles stored back to back.
pub(crate) fn unpickle(data: &[u8]) -> Result<(Graph, usize)> {
    let mut machine = Machine::new(data);
    let root = machine.run()?;
    let graph = Graph {
        nodes: machine.nodes,
        root,
    };
    Ok((graph, machine.pos))
}

/// The highest pickle protocol that Python 3.8 and later write.
const MAX_PROTOCOL: u8 = 5;

/// Integers wider than this many bytes are rejected.
const MAX_INT_BYTES: usize = 16;

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    nodes: Vec<Node>,
    stack: Vec<NodeId>,
    /// Stack lengths at each MARK opcode.
    marks: Vec<usize>,
    memo: HashMap<u32, NodeId>,
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8]) -> Self {
        Machine {
            data,
            pos: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn run(&mut self) -> Result<NodeId> {
        loop {
            let at = self.pos;
            let opcode = *self
                .data
                .get(at)
                .ok_or_else(|| anyhow!("pickle ends at byte {at} without a STOP opcode"))?;
            self.pos += 1;
            let step = self.step(opcode).with_context(|| {
                format!(
                    "invalid pickle: opcode {} ({opcode:#04x}) at byte {at}",
                    opcode_name(opcode)
                )
            })?;
            if let Some(root) = step {
                return Ok(root);
            }
        }
    }

    /// Executes one opcode; returns the result object on STOP.
    fn step(&mut self, opcode: u8) -> Result<Option<NodeId>> {
        match opcode {
            b'.' => return self.pop().map(Some),
            0x80 => self.protocol()?,
            0x95 => self.frame()?,
            b'(' => self.marks.push(self.stack.len()),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => self.dup()?,
            b'N' => self.push(Node::None),
            0x88 => self.push(Node::Bool(true)),
            0x89 => self.push(Node::Bool(false)),
            b'J' => {
                let value = i32::from_le_bytes(self.array()?);
                self.push(Node::Int(value.into()));
            }
            b'K' => {
                let value = self.byte()?;
                self.push(Node::Int(value.into()));
            }
            b'M' => {
                let value = u16::from_le_bytes(self.array()?);
                self.push(Node::Int(value.into()));
            }
            0x8a => {
                let len = usize::from(self.byte()?);
                self.long(len)?;
            }
            0x8b => {
                let len = i32::from_le_bytes(self.array()?);
                let len =
                    usize::try_from(len).map_err(|_| anyhow!("negative LONG4 length {len}"))?;
                self.long(len)?;
            }
            b'G' => {
                let value = f64::from_be_bytes(self.array()?);
                self.push(Node::Float(value));
            }
            _ => return self.step_sized(opcode),
        }
        Ok(None)
    }

    /// Executes the opcodes that carry length-prefixed data.
    fn step_sized(&mut self, opcode: u8) -> Result<Option<NodeId>> {
        match opcode {
            // SHORT_BINUNICODE, BINUNICODE, BINUNICODE8; the Python 2 str
            // opcodes SHORT_BINSTRING and BINSTRING decode as UTF-8 too, as
            // `torch.load` does by default.
            0x8c | b'U' => {
                let len = usize::from(self.byte()?);
                self.string(len)?;
            }
            b'X' => {
                let len = self.u32_len()?;
                self.string(len)?;
            }
            b'T' => {
                let len = i32::from_le_bytes(self.array()?);
                let len =
                    usize::try_from(len).map_err(|_| anyhow!("negative BINSTRING length {len}"))?;
                self.string(len)?;
            }
            0x8d => {
                let len = self.u64_len()?;
                self.string(len)?;
            }
            // SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8.
            b'C' => {
                let len = usize::from(self.byte()?);
                self.bytes(len)?;
            }
            b'B' => {
                let len = self.u32_len()?;
                self.bytes(len)?;
            }
            0x8e | 0x96 => {
                let len = self.u64_len()?;
                self.bytes(len)?;
            }
            _ => return self.step_container(opcode),
        }
        Ok(None)
    }

    /// Executes the opcodes that build tuples, lists and dicts.
    fn step_container(&mut self, opcode: u8) -> Result<Option<NodeId>> {
        match opcode {
            b')' => self.push(Node::Tuple(Vec::new())),
            b't' => {
                let items = self.pop_mark()?;
                self.push(Node::Tuple(items));
            }
            0x85..=0x87 => {
                let count = usize::from(opcode - 0x84);
                let items = self.pop_n(count)?;
                self.push(Node::Tuple(items));
            }
            b']' => self.push(Node::List(Vec::new())),
            b'l' => {
                let items = self.pop_mark()?;
                self.push(Node::List(items));
            }
            b'a' => {
                let item = self.pop()?;
                self.extend_list(vec![item])?;
            }
            b'e' => {
                let items = self.pop_mark()?;
                self.extend_list(items)?;
            }
            b'}' => self.push(Node::Dict(Vec::new())),
            b'd' => {
                let items = self.pop_mark()?;
                let pairs = pairs_of(items)?;
                self.push(Node::Dict(pairs));
            }
            b's' => {
                let items = self.pop_n(2)?;
                self.extend_dict(pairs_of(items)?)?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.extend_dict(pairs_of(items)?)?;
            }
            _ => return self.step_object(opcode),
        }
        Ok(None)
    }

    /// Executes the opcodes for globals, calls, persistent ids and the memo.
    fn step_object(&mut self, opcode: u8) -> Result<Option<NodeId>> {
        match opcode {
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                let global = torch_objects::resolve_global(&module, &name)?;
                self.push(Node::Global(global));
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let module = self.str_of(module, "STACK_GLOBAL module")?;
                let name = self.str_of(name, "STACK_GLOBAL name")?;
                let global = torch_objects::resolve_global(&module, &name)?;
                self.push(Node::Global(global));
            }
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let node = torch_objects::reduce(&self.nodes, callable, args)?;
                self.push(node);
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?;
                torch_objects::build(&self.nodes, target, state)?;
            }
            b'Q' => {
                let pid = self.pop()?;
                let node = torch_objects::persistent_load(&self.nodes, pid)?;
                self.push(node);
            }
            b'q' => {
                let index = self.byte()?.into();
                self.memo_put(index)?;
            }
            b'r' => {
                let index = u32::from_le_bytes(self.array()?);
                self.memo_put(index)?;
            }
            0x94 => {
                let index = u32::try_from(self.memo.len()).context("memo is full")?;
                self.memo_put(index)?;
            }
            b'h' => {
                let index = self.byte()?.into();
                self.memo_get(index)?;
            }
            b'j' => {
                let index = u32::from_le_bytes(self.array()?);
                self.memo_get(index)?;
            }
            _ => bail!(
                "unsupported opcode: torch.save checkpoints use only the binary opcodes \
                 of pickle protocols 2 to 5 for data, globals and persistent ids"
            ),
        }
        Ok(None)
    }

    fn protocol(&mut self) -> Result<()> {
        let version = self.byte()?;
        if version > MAX_PROTOCOL {
            bail!("unsupported pickle protocol {version}: expected 2 to {MAX_PROTOCOL}");
        }
        Ok(())
    }

    /// Skips a protocol 4 FRAME header; frames only group opcodes.
    fn frame(&mut self) -> Result<()> {
        let len = u64::from_le_bytes(self.array()?);
        let left = self.data.len() - self.pos;
        if len > left as u64 {
            bail!("frame of {len} bytes, but only {left} bytes are left");
        }
        Ok(())
    }

    fn push(&mut self, node: Node) {
        self.stack.push(self.nodes.len());
        self.nodes.push(node);
    }

    /// Returns the stack length below which the current MARK protects items.
    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn pop(&mut self) -> Result<NodeId> {
        if self.stack.len() <= self.fence() {
            bail!("stack underflow: the opcode needs an object above the last MARK");
        }
        Ok(self.stack.pop().expect("stack is longer than its fence"))
    }

    fn pop_n(&mut self, count: usize) -> Result<Vec<NodeId>> {
        if self.stack.len() < self.fence() + count {
            bail!("stack underflow: the opcode needs {count} objects above the last MARK");
        }
        Ok(self.stack.split_off(self.stack.len() - count))
    }

    fn top(&self) -> Result<NodeId> {
        if self.stack.len() <= self.fence() {
            bail!("stack underflow: the opcode needs an object above the last MARK");
        }
        Ok(*self.stack.last().expect("stack is longer than its fence"))
    }

    fn pop_mark(&mut self) -> Result<Vec<NodeId>> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| anyhow!("no MARK on the stack"))?;
        Ok(self.stack.split_off(mark))
    }

    fn dup(&mut self) -> Result<()> {
        let top = self.top()?;
        self.stack.push(top);
        Ok(())
    }

    fn extend_list(&mut self, items: Vec<NodeId>) -> Result<()> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::List(list) => list.extend(items),
            other => bail!("cannot append to a {}: expected a list", other.type_name()),
        }
        Ok(())
    }

    fn extend_dict(&mut self, pairs: Vec<(NodeId, NodeId)>) -> Result<()> {
        let target = self.top()?;
        match &mut self.nodes[target] {
            Node::Dict(dict) => dict.extend(pairs),
            other => bail!(
                "cannot set items of a {}: expected a dict",
                other.type_name()
            ),
        }
        Ok(())
    }

    fn memo_put(&mut self, index: u32) -> Result<()> {
        let top = self.top()?;
        self.memo.insert(index, top);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<()> {
        let id = *self
            .memo
            .get(&index)
            .ok_or_else(|| anyhow!("memo key {index} is not defined"))?;
        self.stack.push(id);
        Ok(())
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let left = self.data.len() - self.pos;
        if len > left {
            bail!("truncated pickle: {len} bytes expected, only {left} left");
        }
        let slice = &self.data[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    fn byte(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("take returns N bytes"))
    }

    fn u32_len(&mut self) -> Result<usize> {
        let len = u32::from_le_bytes(self.array()?);
        usize::try_from(len).context("length does not fit in memory")
    }

    fn u64_len(&mut self) -> Result<usize> {
        let len = u64::from_le_bytes(self.array()?);
        usize::try_from(len).with_context(|| format!("length {len} does not fit in memory"))
    }

    /// Reads a newline-terminated ASCII line, as GLOBAL uses.
    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| anyhow!("truncated pickle: GLOBAL name has no terminating newline"))?;
        let line = std::str::from_utf8(&rest[..end])
            .map_err(|_| anyhow!("GLOBAL name is not valid UTF-8"))?
            .to_string();
        self.pos += end + 1;
        Ok(line)
    }

    fn long(&mut self, len: usize) -> Result<()> {
        if len > MAX_INT_BYTES {
            bail!(
                "integer of {len} bytes is too large: at most {MAX_INT_BYTES} bytes are supported"
            );
        }
        let bytes = self.take(len)?;
        self.push(Node::Int(decode_long(bytes)));
        Ok(())
    }

    fn string(&mut self, len: usize) -> Result<()> {
        let bytes = self.take(len)?;
        let text = std::str::from_utf8(bytes)
            .map_err(|e| anyhow!("string of {len} bytes is not valid UTF-8: {e}"))?;
        self.push(Node::Str(text.to_string()));
        Ok(())
    }

    fn bytes(&mut self, len: usize) -> Result<()> {
        let bytes = self.take(len)?.to_vec();
        self.push(Node::Bytes(bytes));
        Ok(())
    }

    fn str_of(&self, id: NodeId, what: &str) -> Result<String> {
        match &self.nodes[id] {
            Node::Str(s) => Ok(s.clone()),
            other => bail!("{what} has type {}: expected a str", other.type_name()),
        }
    }
}

/// Decodes a little-endian two's-complement integer of at most 16 bytes.
fn decode_long(bytes: &[u8]) -> i128 {
    let Some(&last) = bytes.last() else {
        return 0;
    };
    let fill = if last & 0x80 != 0 { 0xff } else { 0 };
    let mut buffer = [fill; 16];
    buffer[..bytes.len()].copy_from_slice(bytes);
    i128::from_le_bytes(buffer)
}

fn pairs_of(items: Vec<NodeId>) -> Result<Vec<(NodeId, NodeId)>> {
    if items.len() % 2 != 0 {
        bail!(
            "odd number of stack items ({}) for dict keys and values",
            items.len()
        );
    }
    Ok(items.chunks(2).map(|pair| (pair[0], pair[1])).collect())
}

/// Returns the pickletools name of an opcode, for messages.
fn opcode_name(opcode: u8) -> &'static str {
    OPCODE_NAMES
        .iter()
        .find(|(code, _)| *code == opcode)
        .map(|(_, name)| *name)
        .unwrap_or("<unknown>")
}

const OPCODE_NAMES: [(u8, &str); 68] = [
    (b'(', "MARK"),
    (b'.', "STOP"),
    (b'0', "POP"),
    (b'1', "POP_MARK"),
    (b'2', "DUP"),
    (b'F', "FLOAT"),
    (b'I', "INT"),
    (b'J', "BININT"),
    (b'K', "BININT1"),
    (b'L', "LONG"),
    (b'M', "BININT2"),
    (b'N', "NONE"),
    (b'P', "PERSID"),
    (b'Q', "BINPERSID"),
    (b'R', "REDUCE"),
    (b'S', "STRING"),
    (b'T', "BINSTRING"),
    (b'U', "SHORT_BINSTRING"),
    (b'V', "UNICODE"),
    (b'X', "BINUNICODE"),
    (b'a', "APPEND"),
    (b'b', "BUILD"),
    (b'c', "GLOBAL"),
    (b'd', "DICT"),
    (b'}', "EMPTY_DICT"),
    (b'e', "APPENDS"),
    (b'g', "GET"),
    (b'h', "BINGET"),
    (b'i', "INST"),
    (b'j', "LONG_BINGET"),
    (b'l', "LIST"),
    (b']', "EMPTY_LIST"),
    (b'o', "OBJ"),
    (b'p', "PUT"),
    (b'q', "BINPUT"),
    (b'r', "LONG_BINPUT"),
    (b's', "SETITEM"),
    (b't', "TUPLE"),
    (b')', "EMPTY_TUPLE"),
    (b'u', "SETITEMS"),
    (b'G', "BINFLOAT"),
    (0x80, "PROTO"),
    (0x81, "NEWOBJ"),
    (0x82, "EXT1"),
    (0x83, "EXT2"),
    (0x84, "EXT4"),
    (0x85, "TUPLE1"),
    (0x86, "TUPLE2"),
    (0x87, "TUPLE3"),
    (0x88, "NEWTRUE"),
    (0x89, "NEWFALSE"),
    (0x8a, "LONG1"),
    (0x8b, "LONG4"),
    (b'B', "BINBYTES"),
    (b'C', "SHORT_BINBYTES"),
    (0x8c, "SHORT_BINUNICODE"),
    (0x8d, "BINUNICODE8"),
    (0x8e, "BINBYTES8"),
    (0x8f, "EMPTY_SET"),
    (0x90, "ADDITEMS"),
    (0x91, "FROZENSET"),
    (0x92, "NEWOBJ_EX"),
    (0x93, "STACK_GLOBAL"),
    (0x94, "MEMOIZE"),
    (0x95, "FRAME"),
    (0x96, "BYTEARRAY8"),
    (0x97, "NEXT_BUFFER"),
    (0x98, "READONLY_BUFFER"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_long_sign_extends() {
        assert_eq!(decode_long(&[]), 0);
        assert_eq!(decode_long(&[0xff]), -1);
        assert_eq!(decode_long(&[0x00, 0x01]), 256);
        assert_eq!(decode_long(&[0x00, 0x00, 0x00, 0x00, 0x00, 0x01]), 1 << 40);
    }

    #[test]
    fn unpickle_reports_consumed_length() {
        // PROTO 2, BININT1 7, STOP, then trailing bytes.
        let (graph, used) = unpickle(b"\x80\x02K\x07.rest").unwrap();
        assert_eq!(used, 5);
        assert!(matches!(graph.node(graph.root), Node::Int(7)));
    }

    #[test]
    fn memo_shares_mutated_list() {
        // [] memoized, then filled, then fetched again: both refer to one list.
        let pickle = b"\x80\x02]q\x00K\x01ah\x00\x86.";
        let (graph, _) = unpickle(pickle).unwrap();
        let Node::Tuple(items) = graph.node(graph.root) else {
            panic!("root is not a tuple");
        };
        assert_eq!(items[0], items[1]);
        assert!(matches!(graph.node(items[0]), Node::List(list) if list.len() == 1));
    }
}
