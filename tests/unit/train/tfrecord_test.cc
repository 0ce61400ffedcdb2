#include "core/train/tfrecord.h"

#include <cmath>
#include <string>

#include "gtest/gtest.h"

namespace vlmd {
namespace {

std::string Bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

std::string Hex(const std::string& data) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : data) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

// Test vectors from RFC 3720 (iSCSI) appendix B.4 and the usual check value.
TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string ascending, descending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  for (int i = 31; i >= 0; --i) descending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46DD794Eu);
  EXPECT_EQ(Crc32c(descending), 0x113FDB5Cu);
}

TEST(Crc32cTest, Mask) {
  EXPECT_EQ(MaskCrc(0), 0xa282ead8u);
  EXPECT_EQ(MaskCrc(0xE3069283u), 0xC78AB0E5u);
}

TEST(TfRecordTest, FrameLayout) {
  // Every TensorBoard event file starts with this header: a 24-byte file_version event.
  const std::string event = EncodeFileVersionEvent(1.5);
  ASSERT_EQ(event.size(), 24u);
  const std::string record = FrameRecord(event);
  ASSERT_EQ(record.size(), 8u + 4u + 24u + 4u);
  EXPECT_EQ(Hex(record.substr(0, 12)), "1800000000000000a37f4b22");
  const uint32_t data_crc = MaskCrc(Crc32c(event));
  EXPECT_EQ(record.substr(36),
            Bytes({static_cast<int>(data_crc & 0xFF), static_cast<int>((data_crc >> 8) & 0xFF),
                   static_cast<int>((data_crc >> 16) & 0xFF), static_cast<int>(data_crc >> 24)}));
}

TEST(TfRecordTest, ReadBackAndCorruption) {
  const std::string a = FrameRecord("first"), b = FrameRecord(""), c = FrameRecord("third!");
  StatusOr<std::vector<std::string>> records = ReadRecords(a + b + c, "f");
  ASSERT_TRUE(records.ok()) << records.status();
  EXPECT_EQ(*records, (std::vector<std::string>{"first", "", "third!"}));

  std::string flipped = a + b + c;
  flipped[a.size() + b.size() + 14] ^= 0x01;  // a data byte of the third record
  StatusOr<std::vector<std::string>> bad = ReadRecords(flipped, "events.f");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      bad.status().message(),
      "events.f: record at byte " + std::to_string(a.size() + b.size()) + ": data CRC mismatch");
  std::string length = a;
  length[0] ^= 0x02;
  EXPECT_NE(ReadRecords(length, "f").status().message().find("length CRC mismatch"),
            absl::string_view::npos);
  EXPECT_NE(ReadRecords((a + c).substr(0, a.size() + 15), "f").status().message().find("truncated"),
            absl::string_view::npos);
  // A writer that died mid-record: strict reading refuses, TensorBoard-style reading stops.
  const std::string cut = (a + c).substr(0, a.size() + 15);
  EXPECT_EQ(ReadRecords(cut, "f").status().code(), absl::StatusCode::kDataLoss);
  StatusOr<std::vector<std::string>> head = ReadRecords(cut, "f", /*allow_partial_tail=*/true);
  ASSERT_TRUE(head.ok());
  EXPECT_EQ(*head, (std::vector<std::string>{"first"}));
  EXPECT_EQ(ReadRecords((a + c).substr(0, a.size() + 5), "f", true)->size(), 1u);
  EXPECT_EQ(ReadRecords(flipped, "f", true).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ProtoTest, KnownEventEncodings) {
  // wall_time = 1.5 (field 1, fixed64), then file_version (field 3, 13 bytes).
  EXPECT_EQ(Hex(EncodeFileVersionEvent(1.5)), "09000000000000f83f1a0d" + Hex("brain.Event:2"));
  EXPECT_EQ(Hex(EncodeScalarEvent(2.0, 7, "a", 1.0f)),
            "09"
            "0000000000000040"  // wall_time = 2.0
            "1007"              // step = 7
            "2a0a"              // summary, 10 bytes
            "0a08"              //   value, 8 bytes
            "0a0161"            //     tag = "a"
            "150000803f");      //     simple_value = 1.0f
  // A step of 300 takes a two-byte varint.
  EXPECT_NE(Hex(EncodeScalarEvent(0, 300, "t", 0)).find("10ac02"), std::string::npos);
}

TEST(ProtoTest, ReaderWalksWhatTheWriterWrote) {
  ProtoWriter w;
  w.Varint(2, static_cast<uint64_t>(int64_t{-5}));
  w.Double(1, -0.25);
  w.Float(9, 3.5f);
  w.Bytes(15, "xyz");
  w.Varint(1000, 1);  // a two-byte key
  ProtoReader r(w.data());
  ProtoField f;
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.number, 2);
  EXPECT_EQ(static_cast<int64_t>(f.varint), -5);
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.AsDouble(), -0.25);
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.number, 9);
  EXPECT_EQ(f.AsFloat(), 3.5f);
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.bytes, "xyz");
  ASSERT_TRUE(r.Next(&f));
  EXPECT_EQ(f.number, 1000);
  EXPECT_FALSE(r.Next(&f));
  EXPECT_TRUE(r.ok());

  const std::string cut = w.data().substr(0, w.data().size() - 5);  // inside "xyz"
  ProtoReader truncated(cut);
  while (truncated.Next(&f)) {
  }
  EXPECT_FALSE(truncated.ok());
}

}  // namespace
}  // namespace vlmd
