// The pieces of TensorBoard's event-file format, hand-written so that core/ needs no protobuf
// (DESIGN.md): CRC32C, TFRecord framing, a minimal protobuf wire-format writer and reader, and
// the two Event messages a scalar log needs. Pure functions and value types; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace vlmd {

// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, initial and final XOR 0xFFFFFFFF).
uint32_t Crc32c(std::string_view data);
// TFRecord's masked CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8, modulo 2^32.
uint32_t MaskCrc(uint32_t crc);

// One TFRecord: uint64 length (little-endian), masked CRC32C of those 8 bytes, the data, and
// the masked CRC32C of the data.
std::string FrameRecord(std::string_view data);
// Splits `contents` into the data of its records, verifying both CRCs of each. DATA_LOSS naming
// `source` and the record's byte offset for a bad CRC or a truncated record; with
// `allow_partial_tail`, a last record cut short (a writer that died mid-record) is dropped
// instead, as TensorBoard does.
StatusOr<std::vector<std::string>> ReadRecords(std::string_view contents, const std::string& source,
                                               bool allow_partial_tail = false);

// Protobuf wire-format encoder for the field kinds an Event uses.
class ProtoWriter {
 public:
  void Varint(int field, uint64_t value);         // wire type 0 (int64 as two's complement)
  void Double(int field, double value);           // wire type 1 (fixed64)
  void Bytes(int field, std::string_view value);  // wire type 2 (string, bytes, message)
  void Float(int field, float value);             // wire type 5 (fixed32)
  const std::string& data() const { return out_; }

 private:
  void Key(int field, int wire_type);
  void RawVarint(uint64_t value);
  std::string out_;
};

// One field read back from the wire.
struct ProtoField {
  int number = 0;
  int wire_type = 0;
  uint64_t varint = 0;     // wire type 0
  uint64_t fixed64 = 0;    // wire type 1 (bit pattern)
  uint32_t fixed32 = 0;    // wire type 5 (bit pattern)
  std::string_view bytes;  // wire type 2
  double AsDouble() const;
  float AsFloat() const;
};

// Walks the fields of one message. Wire types 3/4 (groups) are refused.
class ProtoReader {
 public:
  explicit ProtoReader(std::string_view data) : data_(data) {}
  // Reads the next field into *field; false at the end or on malformed data (then !ok()).
  bool Next(ProtoField* field);
  bool ok() const { return ok_; }

 private:
  bool ReadVarint(uint64_t* value);
  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

inline constexpr char kEventFileVersion[] = "brain.Event:2";

// Event{wall_time, file_version: "brain.Event:2"}: the first record of every event file.
std::string EncodeFileVersionEvent(double wall_time);
// Event{wall_time, step, summary{value{tag, simple_value}}}.
std::string EncodeScalarEvent(double wall_time, int64_t step, std::string_view tag, float value);

}  // namespace vlmd
