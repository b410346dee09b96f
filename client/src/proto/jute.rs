//! Jute, ZooKeeper's binary serialisation: the primitive readers and writers every record is
//! built from.
//!
//! Integers are big-endian; a `buffer` or `ustring` is an `i32` length followed by that many
//! bytes (`-1` stands for Java's `null`, read here as empty); a `vector` is an `i32` count
//! followed by its elements. Reading never panics and never allocates more than the input
//! still holds: every length is checked against the bytes that remain before anything is
//! reserved.

use super::DecodeError;

/// A cursor over one frame's bytes.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader positioned at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes already read.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes { count: n }),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining: self.remaining(),
            });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A big-endian `int`.
    pub fn read_i32(&mut self) -> Result<i32, DecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// A big-endian `long`.
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A `boolean`: one byte, any non-zero value is true (as Java's `DataInput`).
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        Ok(self.array::<1>()?[0] != 0)
    }

    /// Reads a length prefix: `None` for `-1` (null), an error for other negatives or for a
    /// length larger than the bytes left times `min_item` (nothing is allocated before this
    /// check).
    fn read_len(&mut self, min_item: usize) -> Result<Option<usize>, DecodeError> {
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        let n = usize::try_from(len).map_err(|_| DecodeError::NegativeLength { length: len })?;
        if n.saturating_mul(min_item) > self.remaining() {
            return Err(DecodeError::Truncated {
                needed: n.saturating_mul(min_item),
                remaining: self.remaining(),
            });
        }
        Ok(Some(n))
    }

    /// A `buffer` borrowed from the input (null reads as empty).
    pub fn read_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        match self.read_len(1)? {
            None => Ok(&[]),
            Some(n) => self.take(n),
        }
    }

    /// A `buffer` (null reads as empty).
    pub fn read_buffer(&mut self) -> Result<Vec<u8>, DecodeError> {
        Ok(self.read_bytes()?.to_vec())
    }

    /// A `ustring`, which must be valid UTF-8 (null reads as empty).
    pub fn read_string(&mut self) -> Result<String, DecodeError> {
        let at = self.pos;
        let bytes = self.read_bytes()?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => Err(DecodeError::InvalidUtf8 { offset: at }),
        }
    }

    /// A `vector` whose elements take at least `min_item` bytes each (null reads as empty).
    pub fn read_vec<T>(
        &mut self,
        min_item: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let Some(n) = self.read_len(min_item.max(1))? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
}

/// Appends jute primitives to a byte buffer.
pub trait Writer {
    /// Appends a big-endian `int`.
    fn put_i32(&mut self, v: i32);
    /// Appends a big-endian `long`.
    fn put_i64(&mut self, v: i64);
    /// Appends a `boolean` as one byte.
    fn put_bool(&mut self, v: bool);
    /// Appends a length-prefixed `buffer`.
    fn put_buffer(&mut self, v: &[u8]);
    /// Appends a length-prefixed `ustring`.
    fn put_string(&mut self, v: &str) {
        self.put_buffer(v.as_bytes());
    }
    /// Appends a length prefix for a vector of `len` items.
    fn put_len(&mut self, len: usize);
}

impl Writer for Vec<u8> {
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_bool(&mut self, v: bool) {
        self.push(u8::from(v));
    }
    fn put_buffer(&mut self, v: &[u8]) {
        self.put_len(v.len());
        self.extend_from_slice(v);
    }
    fn put_len(&mut self, len: usize) {
        // Lengths above i32::MAX cannot be framed; the frame limit rejects them long before.
        self.put_i32(i32::try_from(len).unwrap_or(i32::MAX));
    }
}

/// A jute record: something with a fixed wire layout.
pub trait Record: Sized {
    /// Appends this record's bytes.
    fn encode(&self, out: &mut Vec<u8>);
    /// Reads one record from the cursor.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// The fewest bytes one instance can take on the wire (bounds vector allocation).
    const MIN_SIZE: usize;

    /// Encodes into a fresh buffer.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one record from `bytes`, rejecting trailing bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

/// A value that can stand as one field of a record.
pub trait Field: Sized {
    /// Appends the field.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads the field.
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// The fewest bytes the field takes.
    const MIN_SIZE: usize;
}

impl Field for i32 {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_i32(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
    const MIN_SIZE: usize = 4;
}

impl Field for i64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_i64(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
    const MIN_SIZE: usize = 8;
}

impl Field for bool {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_bool(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    const MIN_SIZE: usize = 1;
}

impl Field for String {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_string(self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_string()
    }
    const MIN_SIZE: usize = 4;
}

/// `Vec<u8>` is a jute `buffer`.
impl Field for Vec<u8> {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_buffer(self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
    const MIN_SIZE: usize = 4;
}

/// `Vec<String>` is a jute `vector<ustring>`.
impl Field for Vec<String> {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_len(self.len());
        for s in self {
            out.put_string(s);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_vec(4, Reader::read_string)
    }
    const MIN_SIZE: usize = 4;
}

/// A nested record is a field.
impl<T: Record> Field for T {
    fn put(&self, out: &mut Vec<u8>) {
        self.encode(out)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        T::decode(r)
    }
    const MIN_SIZE: usize = T::MIN_SIZE;
}

/// `Vec<T>` of records is a jute `vector<T>`.
impl<T: Record> Field for Vec<T> {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_len(self.len());
        for item in self {
            item.encode(out);
        }
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_vec(T::MIN_SIZE, T::decode)
    }
    const MIN_SIZE: usize = 4;
}

/// Declares a jute record: a struct whose fields are encoded in order.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
        }

        impl $crate::proto::jute::Record for $name {
            #[allow(unused_variables)]
            fn encode(&self, out: &mut Vec<u8>) {
                $( $crate::proto::jute::Field::put(&self.$field, out); )*
            }
            #[allow(unused_variables)]
            fn decode(
                r: &mut $crate::proto::jute::Reader<'_>,
            ) -> Result<Self, $crate::proto::DecodeError> {
                Ok($name {
                    $( $field: <$ty as $crate::proto::jute::Field>::get(r)?, )*
                })
            }
            const MIN_SIZE: usize = 0 $( + <$ty as $crate::proto::jute::Field>::MIN_SIZE )*;
        }

        #[cfg(test)]
        impl proptest::arbitrary::Arbitrary for $name {
            type Parameters = ();
            type Strategy = proptest::strategy::BoxedStrategy<Self>;
            #[allow(unused_parens, clippy::unused_unit)]
            fn arbitrary_with(_: ()) -> Self::Strategy {
                use proptest::strategy::Strategy;
                ( $( proptest::arbitrary::any::<$ty>(), )* )
                    .prop_map(|( $( $field, )* )| $name { $( $field, )* })
                    .boxed()
            }
        }
    };
}

/// Declares an enum of ZooKeeper's numbered constants: exact numbers, an `i32` field on the
/// wire, and a typed error for a number ZooKeeper does not define.
macro_rules! numbered {
    (
        $(#[$meta:meta])*
        pub enum $name:ident as $kind:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];

            /// ZooKeeper's number for this value.
            pub const fn code(self) -> i32 {
                match self {
                    $( $name::$variant => $value, )+
                }
            }
        }

        impl TryFrom<i32> for $name {
            type Error = $crate::proto::DecodeError;
            fn try_from(v: i32) -> Result<Self, $crate::proto::DecodeError> {
                match v {
                    $( x if x == $value => Ok($name::$variant), )+
                    _ => Err($crate::proto::DecodeError::UnknownValue { kind: $kind, value: v }),
                }
            }
        }

        impl Default for $name {
            /// The first value ZooKeeper defines (the zero-like one).
            fn default() -> Self {
                $name::ALL[0]
            }
        }

        impl From<$name> for i32 {
            fn from(v: $name) -> i32 {
                v.code()
            }
        }

        impl $crate::proto::jute::Field for $name {
            fn put(&self, out: &mut Vec<u8>) {
                $crate::proto::jute::Writer::put_i32(out, self.code())
            }
            fn get(r: &mut $crate::proto::jute::Reader<'_>) -> Result<Self, $crate::proto::DecodeError> {
                $name::try_from(r.read_i32()?)
            }
            const MIN_SIZE: usize = 4;
        }

        #[cfg(test)]
        impl proptest::arbitrary::Arbitrary for $name {
            type Parameters = ();
            type Strategy = proptest::sample::Select<$name>;
            fn arbitrary_with(_: ()) -> Self::Strategy {
                proptest::sample::select($name::ALL)
            }
        }
    };
}
