#include "core/train/tfrecord.h"

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace vlmd {
namespace {

constexpr uint32_t kCrc32cPolynomial = 0x82F63B78u;  // reflected Castagnoli
constexpr uint32_t kMaskDelta = 0xa282ead8u;
constexpr size_t kHeaderBytes = 12;  // uint64 length + uint32 masked CRC
constexpr size_t kFooterBytes = 4;

const std::array<uint32_t, 256>& Crc32cTable() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kCrc32cPolynomial : 0u);
      t[i] = crc;
    }
    return t;
  }();
  return table;
}

void AppendLittleEndian(uint64_t value, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

uint64_t ReadLittleEndian(std::string_view data, size_t pos, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<uint64_t>(static_cast<uint8_t>(data[pos + i])) << (8 * i);
  }
  return value;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  const std::array<uint32_t, 256>& table = Crc32cTable();
  uint32_t crc = 0xFFFFFFFFu;
  for (char c : data) crc = table[(crc ^ static_cast<uint8_t>(c)) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t MaskCrc(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + kMaskDelta; }

std::string FrameRecord(std::string_view data) {
  std::string out;
  out.reserve(kHeaderBytes + data.size() + kFooterBytes);
  AppendLittleEndian(data.size(), 8, &out);
  AppendLittleEndian(MaskCrc(Crc32c(out)), 4, &out);
  out.append(data);
  AppendLittleEndian(MaskCrc(Crc32c(data)), 4, &out);
  return out;
}

StatusOr<std::vector<std::string>> ReadRecords(std::string_view contents, const std::string& source,
                                               bool allow_partial_tail) {
  std::vector<std::string> records;
  size_t pos = 0;
  while (pos < contents.size()) {
    auto fail = [&](const std::string& what) {
      return absl::DataLossError(absl::StrCat(source, ": record at byte ", pos, ": ", what));
    };
    if (contents.size() - pos < kHeaderBytes) {
      if (allow_partial_tail) break;
      return fail("truncated header");
    }
    const uint64_t length = ReadLittleEndian(contents, pos, 8);
    if (MaskCrc(Crc32c(contents.substr(pos, 8))) != ReadLittleEndian(contents, pos + 8, 4)) {
      return fail("length CRC mismatch");
    }
    if (length > contents.size() - pos - kHeaderBytes ||
        contents.size() - pos - kHeaderBytes - length < kFooterBytes) {
      if (allow_partial_tail) break;
      return fail(absl::StrCat("truncated data (", length, " bytes announced)"));
    }
    std::string_view data = contents.substr(pos + kHeaderBytes, length);
    if (MaskCrc(Crc32c(data)) != ReadLittleEndian(contents, pos + kHeaderBytes + length, 4)) {
      return fail("data CRC mismatch");
    }
    records.emplace_back(data);
    pos += kHeaderBytes + length + kFooterBytes;
  }
  return records;
}

void ProtoWriter::RawVarint(uint64_t value) {
  while (value >= 0x80) {
    out_.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out_.push_back(static_cast<char>(value));
}

void ProtoWriter::Key(int field, int wire_type) {
  RawVarint((static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(wire_type));
}

void ProtoWriter::Varint(int field, uint64_t value) {
  Key(field, 0);
  RawVarint(value);
}

void ProtoWriter::Double(int field, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  Key(field, 1);
  AppendLittleEndian(bits, 8, &out_);
}

void ProtoWriter::Bytes(int field, std::string_view value) {
  Key(field, 2);
  RawVarint(value.size());
  out_.append(value);
}

void ProtoWriter::Float(int field, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  Key(field, 5);
  AppendLittleEndian(bits, 4, &out_);
}

double ProtoField::AsDouble() const {
  double value;
  std::memcpy(&value, &fixed64, sizeof(value));
  return value;
}

float ProtoField::AsFloat() const {
  float value;
  std::memcpy(&value, &fixed32, sizeof(value));
  return value;
}

bool ProtoReader::ReadVarint(uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && pos_ < data_.size(); shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(data_[pos_++]);
    *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

bool ProtoReader::Next(ProtoField* field) {
  if (!ok_ || pos_ >= data_.size()) return false;
  uint64_t key = 0;
  ok_ = ReadVarint(&key);
  *field = ProtoField();
  field->number = static_cast<int>(key >> 3);
  field->wire_type = static_cast<int>(key & 7);
  const size_t left = data_.size() - pos_;
  if (ok_ && field->wire_type == 0) {
    ok_ = ReadVarint(&field->varint);
  } else if (ok_ && field->wire_type == 1 && left >= 8) {
    field->fixed64 = ReadLittleEndian(data_, pos_, 8);
    pos_ += 8;
  } else if (ok_ && field->wire_type == 5 && left >= 4) {
    field->fixed32 = static_cast<uint32_t>(ReadLittleEndian(data_, pos_, 4));
    pos_ += 4;
  } else if (ok_ && field->wire_type == 2) {
    uint64_t length = 0;
    ok_ = ReadVarint(&length) && length <= data_.size() - pos_;
    if (ok_) field->bytes = data_.substr(pos_, length);
    pos_ += ok_ ? length : 0;
  } else {
    ok_ = false;  // groups, unknown wire types, truncated fixed-width values
  }
  return ok_;
}

std::string EncodeFileVersionEvent(double wall_time) {
  ProtoWriter event;
  event.Double(1, wall_time);
  event.Bytes(3, kEventFileVersion);
  return event.data();
}

std::string EncodeScalarEvent(double wall_time, int64_t step, std::string_view tag, float value) {
  ProtoWriter summary_value;  // Summary.Value{tag = 1, simple_value = 2}
  summary_value.Bytes(1, tag);
  summary_value.Float(2, value);
  ProtoWriter summary;  // Summary{repeated Value value = 1}
  summary.Bytes(1, summary_value.data());
  ProtoWriter event;  // Event{wall_time = 1, step = 2, summary = 5}
  event.Double(1, wall_time);
  event.Varint(2, static_cast<uint64_t>(step));
  event.Bytes(5, summary.data());
  return event.data();
}

}  // namespace vlmd
