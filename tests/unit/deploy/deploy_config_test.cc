// The vlmd.yaml files of deploy/compose and of the k8s ConfigMap parse and validate with vlmd's
// own config reader, so a deploy never starts with a config the server refuses.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <iterator>
#include <string>

#include "server/config.h"

namespace vlmd::server {
namespace {

std::string ReadSource(const std::string& rel) {
  std::ifstream in(std::string(VLMD_SOURCE_DIR) + "/" + rel);
  EXPECT_TRUE(in.good()) << rel;
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void ExpectValid(const std::string& text, const std::string& source) {
  StatusOr<ServeConfig> c = ParseServeConfig(text, source, {});
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(ValidateServeConfig(*c).ok()) << ValidateServeConfig(*c);
  EXPECT_FALSE(c->models.empty()) << source;
  EXPECT_FALSE(c->metrics_listen.empty()) << source << ": the dashboards need metrics";
  EXPECT_FALSE(c->state_dir.empty()) << source << ": jobs need a state directory";
}

TEST(DeployConfig, ComposeConfigIsValid) {
  ExpectValid(ReadSource("deploy/compose/vlmd.yaml"), "deploy/compose/vlmd.yaml");
}

TEST(DeployConfig, KubernetesConfigMapIsValid) {
  YAML::Node cm = YAML::Load(ReadSource("deploy/k8s/configmap.yaml"));
  ASSERT_EQ(cm["kind"].as<std::string>(), "ConfigMap");
  ASSERT_TRUE(cm["data"]["vlmd.yaml"]) << "the ConfigMap has no vlmd.yaml key";
  ExpectValid(cm["data"]["vlmd.yaml"].as<std::string>(), "deploy/k8s/configmap.yaml");
}

}  // namespace
}  // namespace vlmd::server
