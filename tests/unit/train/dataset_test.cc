#include "core/train/dataset.h"

#include <unistd.h>

#include <set>

#include "gtest/gtest.h"
#include "tests/unit/train/test_files.h"

namespace vlmd {
namespace {

using testing::TempDir;

// "role:text" per turn joined by " | ", images shown as [img].
std::string Render(const Sample& sample) {
  std::string out;
  for (const ChatMessage& m : sample.messages) {
    if (!out.empty()) out += " | ";
    out += m.role + ":";
    for (const ContentPart& p : m.content) {
      out += p.type == ContentPart::Type::kImage ? "[img]" : p.text;
    }
  }
  return out;
}

DatasetReadResult ReadOk(const std::string& path, const DatasetReadOptions& options = {}) {
  StatusOr<DatasetReadResult> r = ReadDatasetFile(path, options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : DatasetReadResult();
}

TEST(DatasetTest, QueryResponseWithSystemHistoryAndImages) {
  TempDir dir;
  const std::string a = dir.WritePng("img/a.png", 30, 20);
  const std::string b = dir.WritePng("img/b.png", 30, 20);
  const std::string path =
      dir.Write("data/train.jsonl",
                R"({"system": "Be brief.", "query": "<image>What is it?", "response": "A cat.", )"
                R"("history": [["Hi", "Hello!"]], "images": ["../img/a.png"]})"
                "\n\n"  // an empty line is skipped but counted
                R"({"query": "Compare", "response": "Same.", "images": [")" +
                    b +
                    R"(", "../img/a.png"]})"
                    "\n");
  DatasetReadResult r = ReadOk(path);
  ASSERT_EQ(r.samples.size(), 2u);
  EXPECT_EQ(r.rows, 2);
  EXPECT_EQ(r.issues.total(), 0);
  EXPECT_EQ(Render(r.samples[0]),
            "system:Be brief. | user:Hi | assistant:Hello! | user:[img]What is it? | "
            "assistant:A cat.");
  ASSERT_EQ(r.samples[0].images.size(), 1u);
  EXPECT_EQ(r.samples[0].images[0].path, a);  // relative to the data file, canonical
  EXPECT_EQ(r.samples[0].file, path);
  EXPECT_EQ(r.samples[0].line, 1);
  // No tags for two images: both are put in front of the first query, in order.
  EXPECT_EQ(Render(r.samples[1]), "user:[img][img]Compare | assistant:Same.");
  EXPECT_EQ(r.samples[1].images[0].path, b);
  EXPECT_EQ(r.samples[1].images[1].path, a);
  EXPECT_EQ(r.samples[1].line, 3);
}

TEST(DatasetTest, MessagesLayoutWithTagsAndContentParts) {
  TempDir dir;
  const std::string a = dir.WritePng("a.png", 8, 8);
  dir.WritePng("b.png", 8, 8);
  const std::string path =
      dir.Write("train.jsonl",
                R"({"messages": [{"role": "user", "content": "Left <image> right <image>"},)"
                R"( {"role": "assistant", "content": "two"}], "images": "a.png"})"
                "\n"
                R"({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": )"
                R"([{"type": "image", "image": "b.png"}, {"type": "text", "text": "what?"}]},)"
                R"( {"role": "assistant", "content": "b"}]})"
                "\n"
                R"({"messages": [{"role": "user", "content": "<image>one"}, {"role": "assistant", )"
                R"("content": "x"}], "images": "a.png"})"
                "\n");
  DatasetReadResult r = ReadOk(path);
  // Row 1: two tags but a single image (a string is one path).
  ASSERT_EQ(r.issues.kept().size(), 1u);
  EXPECT_EQ(r.issues.kept()[0].ToString(), path + ":1: 2 <image> tags but 1 image");
  EXPECT_EQ(r.issues.kept()[0].kind, IssueKind::kImageTags);
  ASSERT_EQ(r.samples.size(), 2u);
  EXPECT_EQ(Render(r.samples[0]), "system:S | user:[img]what? | assistant:b");
  EXPECT_EQ(r.samples[0].images[0].path, dir.Path("b.png"));
  EXPECT_EQ(Render(r.samples[1]), "user:[img]one | assistant:x");
  EXPECT_EQ(r.samples[1].images[0].path, a);
  EXPECT_EQ(r.samples[1].line, 3);
}

TEST(DatasetTest, ConversationsAndInstructionLayouts) {
  TempDir dir;
  const std::string path = dir.Write(
      "mix.jsonl",
      R"({"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "q1"},)"
      R"( {"from": "gpt", "value": "a1"}, {"from": "human", "value": "q2"},)"
      R"( {"from": "gpt", "value": "a2"}]})"
      "\n"
      R"({"instruction": "Translate", "input": "bonjour", "output": "hello"})"
      "\n"
      R"({"instruction": "Say hi", "output": "hi", "system": "Friendly."})"
      "\n");
  DatasetReadResult r = ReadOk(path);
  ASSERT_EQ(r.samples.size(), 3u) << r.issues.kept()[0].ToString();
  EXPECT_EQ(Render(r.samples[0]), "system:S | user:q1 | assistant:a1 | user:q2 | assistant:a2");
  EXPECT_EQ(Render(r.samples[1]), "user:Translate\nbonjour | assistant:hello");
  EXPECT_EQ(Render(r.samples[2]), "system:Friendly. | user:Say hi | assistant:hi");
}

TEST(DatasetTest, JsonArrayRowsAreNumberedByIndex) {
  TempDir dir;
  const std::string path =
      dir.Write("data.json",
                "[\n  {\"query\": \"q\", \"response\": \"r\"},\n  {\"query\": \"only a query\"},\n"
                "  {\"query\": \"q3\", \"response\": \"r3\"}\n]\n");
  DatasetReadResult r = ReadOk(path);
  ASSERT_EQ(r.samples.size(), 2u);
  EXPECT_EQ(r.samples[1].line, 3);
  ASSERT_EQ(r.issues.kept().size(), 1u);
  EXPECT_EQ(r.issues.kept()[0].ToString(), path + ":2: missing \"response\"");
}

TEST(DatasetTest, BrokenJsonFileNamesTheLine) {
  TempDir dir;
  const std::string path = dir.Write("data.json", "[\n {\"query\": \"q\",\n \"response\": }\n]");
  DatasetReadResult r = ReadOk(path);
  EXPECT_TRUE(r.samples.empty());
  ASSERT_EQ(r.issues.kept().size(), 1u);
  EXPECT_EQ(r.issues.kept()[0].kind, IssueKind::kBadJson);
  EXPECT_EQ(r.issues.kept()[0].line, 3);
}

// Found by tests/fuzz/dataset_fuzzer.cc: a number that overflows a double threw
// json::out_of_range (not a parse_error) out of the reader and ended the process.
TEST(DatasetTest, OverflowingNumberInJsonFileIsAnIssue) {
  TempDir dir;
  std::string path = dir.Write("rows.json", R"([{"query": 3e308, "response": "r"}])");
  auto r = ReadDatasetFile(path, DatasetReadOptions());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->issues.kept().size(), 1u);
  EXPECT_EQ(r->issues.kept()[0].kind, IssueKind::kBadJson);
  EXPECT_NE(r->issues.kept()[0].reason.find("overflow"), std::string::npos)
      << r->issues.kept()[0].reason;
  std::string lines = dir.Write("rows.jsonl", "{\"query\": 1e400, \"response\": \"r\"}\n");
  auto l = ReadDatasetFile(lines, DatasetReadOptions());
  ASSERT_TRUE(l.ok()) << l.status();
  EXPECT_EQ(l->issues.errors(), 1);
}

TEST(DatasetTest, CsvWithQuotingImagesAndHistory) {
  TempDir dir;
  const std::string img = dir.WritePng("pics/x.png", 10, 10);
  const std::string path = dir.Write(
      "data.csv",
      "system,query,response,images,history\n"
      ",\"What, exactly?\",\"It says \"\"hi\"\"\nover two lines\",pics/x.png,\n"
      "Sys,q2,r2,\"[\"\"pics/x.png\"\", \"\"pics/x.png\"\"]\",\"[[\"\"h\"\", \"\"i\"\"]]\"\n"
      "too,few\n");
  DatasetReadResult r = ReadOk(path);
  ASSERT_EQ(r.samples.size(), 2u);
  EXPECT_EQ(r.rows, 3);
  // An empty system cell means no system turn (the template's default applies later).
  EXPECT_EQ(Render(r.samples[0]),
            "user:[img]What, exactly? | assistant:It says \"hi\"\nover two lines");
  EXPECT_EQ(r.samples[0].images[0].path, img);
  EXPECT_EQ(r.samples[0].line, 2);
  // The missing tags go in front of the first query of the conversation: the history's.
  EXPECT_EQ(Render(r.samples[1]),
            "system:Sys | user:[img][img]h | assistant:i | user:q2 | assistant:r2");
  EXPECT_EQ(r.samples[1].line, 4);  // the quoted newline made record 1 two lines long
  ASSERT_EQ(r.issues.kept().size(), 1u);
  EXPECT_EQ(r.issues.kept()[0].ToString(), path + ":5: 2 fields, but the header has 5");
  EXPECT_EQ(r.issues.kept()[0].kind, IssueKind::kBadCsv);
}

TEST(DatasetTest, MalformedLinesBecomeLocatedIssues) {
  TempDir dir;
  TempDir outside;
  dir.WritePng("ok.png", 8, 8);
  const std::string secret = outside.WritePng("secret.png", 8, 8);
  ASSERT_EQ(symlink(secret.c_str(), dir.Path("link.png").c_str()), 0);
  dir.Write("bad.png", "this is not a PNG");
  const std::string path = dir.Write(
      "train.jsonl",
      std::string(R"({"query": "fine", "response": "yes", "images": ["ok.png"]})") + "\n" +
          R"({"query": "broken", "response": )" + "\n" + R"({"query": "no answer"})" + "\n" +
          R"({"query": "q", "response": "r", "images": ["../)" +
          outside.path().substr(outside.path().find_last_of('/') + 1) + R"(/secret.png"]})" + "\n" +
          R"({"query": "q", "response": "r", "images": ["link.png"]})" + "\n" +
          R"({"query": "q", "response": "r", "images": ["gone.png"]})" + "\n" +
          R"({"query": "q", "response": "r", "images": ["https://example.com/a.png"]})" + "\n" +
          R"({"query": "q", "response": "<image> in the answer", "images": ["ok.png"]})" + "\n" +
          R"({"question": "q", "answer": "a"})" + "\n" +
          R"({"messages": [{"role": "assistant", "content": "first"}]})" + "\n" +
          R"({"query": "q", "response": 42})" + "\n" +
          R"({"query": "q", "response": "r", "images": ["bad.png"]})" + "\n");
  DatasetReadOptions options;
  options.allowed_roots = std::vector<std::string>{dir.path()};
  DatasetReadResult r = ReadOk(path, options);
  EXPECT_EQ(r.rows, 12);
  // A corrupt image is found by validation (header check), not by reading.
  ASSERT_EQ(r.samples.size(), 2u);
  EXPECT_EQ(r.samples[0].line, 1);
  EXPECT_EQ(r.samples[1].line, 12);
  std::vector<std::pair<int64_t, IssueKind>> expected = {
      {2, IssueKind::kBadJson},           {3, IssueKind::kBadRow},
      {4, IssueKind::kImageOutsideRoots}, {5, IssueKind::kImageOutsideRoots},
      {6, IssueKind::kImageMissing},      {7, IssueKind::kImageUnsupported},
      {8, IssueKind::kImageTags},         {9, IssueKind::kBadRow},
      {10, IssueKind::kBadRow},           {11, IssueKind::kBadRow}};
  ASSERT_EQ(r.issues.kept().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const DatasetIssue& issue = r.issues.kept()[i];
    EXPECT_EQ(issue.file, path);
    EXPECT_EQ(issue.line, expected[i].first) << issue.ToString();
    EXPECT_EQ(issue.kind, expected[i].second) << issue.ToString();
  }
  const auto& kept = r.issues.kept();
  EXPECT_NE(kept[1].reason.find("missing \"response\""), std::string::npos);
  EXPECT_NE(kept[2].reason.find("outside the allowed roots"), std::string::npos) << kept[2].reason;
  EXPECT_NE(kept[3].reason.find("image 'link.png'"), std::string::npos) << kept[3].reason;
  EXPECT_NE(kept[3].reason.find("outside the allowed roots"), std::string::npos);
  EXPECT_EQ(kept[4].reason, "image 'gone.png' not found (looked for " + dir.Path("gone.png") + ")");
  EXPECT_NE(kept[7].reason.find("no known layout"), std::string::npos);
  EXPECT_NE(kept[7].reason.find("(keys: answer, question)"), std::string::npos) << kept[7].reason;
  EXPECT_NE(kept[8].reason.find("turn 1 is 'assistant', expected 'user'"), std::string::npos);
  EXPECT_EQ(kept[9].reason, "\"response\" must be a string (got number)");
  EXPECT_EQ(r.issues.errors(), 10);
  EXPECT_EQ(r.issues.counts().at("image_outside_roots"), 2);
}

TEST(DatasetTest, IssueListIsCappedButCountsAll) {
  TempDir dir;
  std::string text;
  for (int i = 0; i < 5; ++i) text += "{not json}\n";
  const std::string path = dir.Write("t.jsonl", text);
  DatasetReadOptions options;
  options.max_issues = 2;
  DatasetReadResult r = ReadOk(path, options);
  EXPECT_EQ(r.issues.kept().size(), 2u);
  EXPECT_EQ(r.issues.total(), 5);
  EXPECT_EQ(r.issues.counts().at("bad_json"), 5);
  EXPECT_EQ(r.issues.kept()[1].line, 2);
}

TEST(DatasetTest, FileLevelErrors) {
  TempDir dir;
  TempDir other;
  const std::string outside = other.Write("t.jsonl", "{}\n");
  DatasetReadOptions options;
  options.allowed_roots = std::vector<std::string>{dir.path()};
  EXPECT_EQ(ReadDatasetFile(outside, options).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ReadDatasetFile(dir.Path("none.jsonl"), options).status().code(),
            absl::StatusCode::kNotFound);
  const std::string txt = dir.Write("t.txt", "x");
  StatusOr<DatasetReadResult> r = ReadDatasetFile(txt, options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(txt), absl::string_view::npos);
}

TEST(DatasetTest, LatexOcrNamesResolveToTheirFolder) {
  TempDir root;
  root.WritePng("latex-ocr-print/images/0.png", 40, 12);
  const std::string train = root.Write(
      "latex-ocr-print/train.jsonl",
      "{\"image\": \"images/0.png\", \"text\": \"x^{2}\"}\n"
      "{\"query\": \"<image>LaTeX?\", \"response\": \"y\", \"images\": [\"images/0.png\"]}\n");
  const std::string val = root.Write("latex-ocr-print/validation.jsonl",
                                     "{\"image\": \"images/0.png\", \"text\": \"z\"}\n");
  StatusOr<DatasetSource> source = ResolveDatasetName("latex-ocr-print", root.path());
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_TRUE(source->latex_ocr);
  EXPECT_EQ(source->files, (std::vector<std::string>{train, val}));
  StatusOr<DatasetReadResult> r = ReadDatasets({*source}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->samples.size(), 3u);
  EXPECT_EQ(Render(r->samples[0]),
            "user:[img]Using LaTeX to perform OCR on the image. | assistant:x^{2}");
  EXPECT_EQ(Render(r->samples[1]), "user:[img]LaTeX? | assistant:y");
  EXPECT_EQ(r->samples[2].file, val);
  EXPECT_EQ(r->files, 2);

  EXPECT_EQ(ResolveDatasetName("latex-ocr-handwrite", root.path()).status().code(),
            absl::StatusCode::kNotFound);
  StatusOr<DatasetSource> plain = ResolveDatasetName("/data/my.jsonl", root.path());
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->latex_ocr);
  EXPECT_EQ(plain->files, (std::vector<std::string>{"/data/my.jsonl"}));
}

std::vector<Sample> Numbered(int n) {
  std::vector<Sample> samples(n);
  for (int i = 0; i < n; ++i) samples[i].line = i + 1;
  return samples;
}

std::vector<int64_t> Lines(const std::vector<Sample>& samples) {
  std::vector<int64_t> lines;
  for (const Sample& s : samples) lines.push_back(s.line);
  return lines;
}

TEST(SplitTest, SizesFollowSwift) {
  for (auto [n, val] :
       std::vector<std::pair<int, size_t>>{{250, 2}, {100, 1}, {50, 1}, {2, 1}, {17918, 179}}) {
    StatusOr<TrainValSplit> s = SplitTrainVal(Numbered(n), 0.01, 42);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->val.size(), val) << n;
    EXPECT_EQ(s->train.size(), n - val) << n;
  }
  StatusOr<TrainValSplit> none = SplitTrainVal(Numbered(10), 0.0, 42);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->val.empty());
  EXPECT_EQ(Lines(none->train), Lines(Numbered(10)));  // ratio 0 keeps the order
  EXPECT_EQ(SplitTrainVal(Numbered(1), 0.01, 42).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SplitTrainVal(Numbered(10), 1.0, 42).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SplitTest, DeterministicPartitionBySeed) {
  StatusOr<TrainValSplit> a = SplitTrainVal(Numbered(1000), 0.05, 42);
  StatusOr<TrainValSplit> b = SplitTrainVal(Numbered(1000), 0.05, 42);
  StatusOr<TrainValSplit> c = SplitTrainVal(Numbered(1000), 0.05, 7);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(Lines(a->val), Lines(b->val));
  EXPECT_EQ(Lines(a->train), Lines(b->train));
  EXPECT_NE(Lines(a->val), Lines(c->val));
  std::set<int64_t> all;
  for (int64_t line : Lines(a->val)) all.insert(line);
  for (int64_t line : Lines(a->train)) all.insert(line);
  EXPECT_EQ(all.size(), 1000u);  // a partition: nothing lost, nothing twice
  EXPECT_EQ(a->val.size(), 50u);
  // Pinned so that a change of the shuffle (which would silently change every job's
  // validation set) shows up here.
  EXPECT_EQ(Lines(SplitTrainVal(Numbered(10), 0.2, 42)->val), (std::vector<int64_t>{2, 8}))
      << "update the pinned values if the shuffle changed on purpose";
}

}  // namespace
}  // namespace vlmd
