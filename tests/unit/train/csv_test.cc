#include "core/train/csv.h"

#include "gtest/gtest.h"

namespace vlmd {
namespace {

using Fields = std::vector<std::string>;

TEST(CsvTest, PlainRecordsWithLfAndCrlf) {
  std::vector<CsvRecord> r = ParseCsv("query,response\r\nhi,there\nsecond,row\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].fields, (Fields{"query", "response"}));
  EXPECT_EQ(r[1].fields, (Fields{"hi", "there"}));
  EXPECT_EQ(r[2].fields, (Fields{"second", "row"}));
  EXPECT_EQ(r[0].line, 1);
  EXPECT_EQ(r[1].line, 2);
  EXPECT_EQ(r[2].line, 3);
  for (const CsvRecord& record : r) EXPECT_EQ(record.error, "");
}

TEST(CsvTest, QuotedFieldsHoldCommasNewlinesAndQuotes) {
  std::vector<CsvRecord> r =
      ParseCsv("a,b,c\n\"x, y\",\"two\nlines\",\"say \"\"hi\"\"\"\n\"\",plain,\"\"\"\"\nlast,1,2");
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[1].fields, (Fields{"x, y", "two\nlines", "say \"hi\""}));
  EXPECT_EQ(r[1].line, 2);
  // The record after a two-line field starts on physical line 4.
  EXPECT_EQ(r[2].fields, (Fields{"", "plain", "\""}));
  EXPECT_EQ(r[2].line, 4);
  EXPECT_EQ(r[3].fields, (Fields{"last", "1", "2"}));  // no final newline
  EXPECT_EQ(r[3].line, 5);
}

TEST(CsvTest, BomAndBlankLinesAreSkippedEmptyFieldsKept) {
  std::vector<CsvRecord> r = ParseCsv("\xEF\xBB\xBFq,r\n\n\r\n,\n1,\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].fields, (Fields{"q", "r"}));
  EXPECT_EQ(r[1].fields, (Fields{"", ""}));
  EXPECT_EQ(r[1].line, 4);
  EXPECT_EQ(r[2].fields, (Fields{"1", ""}));
  EXPECT_EQ(r[2].line, 5);
}

TEST(CsvTest, QuoteInsideUnquotedFieldIsText) {
  std::vector<CsvRecord> r = ParseCsv("a,b\n5\" screen,x\n");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1].fields, (Fields{"5\" screen", "x"}));
  EXPECT_EQ(r[1].error, "");
}

TEST(CsvTest, TextAfterClosingQuoteIsThatRecordsError) {
  std::vector<CsvRecord> r = ParseCsv("a,b\n\"x\"y,z\nok,1\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_NE(r[1].error.find("after a closing quote"), std::string::npos) << r[1].error;
  EXPECT_EQ(r[1].line, 2);
  EXPECT_EQ(r[2].fields, (Fields{"ok", "1"}));
  EXPECT_EQ(r[2].error, "");
  EXPECT_EQ(r[2].line, 3);
}

TEST(CsvTest, UnclosedQuoteNamesItsLine) {
  std::vector<CsvRecord> r = ParseCsv("a,b\nfine,1\nx,\"never\nclosed\n");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[2].line, 3);
  EXPECT_EQ(r[2].error, "quoted field opened on line 3 is never closed");
}

}  // namespace
}  // namespace vlmd
