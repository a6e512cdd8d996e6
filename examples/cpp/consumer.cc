// Reads one payload and prints its canonical proto3 JSON, or
// "rejected <reason>: <detail>" (exit code 1). The type URL names the
// message: one of flower_meta.v1's, or with --schema, of the schema in that
// FileDescriptorSet (schema.h). The rules come from the schema's options
// (rules.h); a schema holding a rule this reader does not enforce is refused
// before any payload is read: one line on stderr, exit code 1.
//
//   consumer [--schema SET] TYPE_URL PAYLOAD_FILE
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "json.h"
#include "rules.h"
#include "schema.h"

using flower_meta_reader::Rejected;
using flower_meta_reader::Schema;
using flower_meta_reader::SchemaRefused;

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::optional<std::string> set;
  if (args.size() == 4 && args[0] == "--schema") {
    set = args[1];
    args.erase(args.begin(), args.begin() + 2);
  }
  if (args.size() != 2) {
    std::cerr << "usage: consumer [--schema SET] TYPE_URL PAYLOAD_FILE\n";
    return 2;
  }
  try {
    const Schema schema = set ? Schema(*set) : Schema();
    schema.CheckRules();
    std::ifstream file(args[1], std::ios::binary);
    std::stringstream payload;
    payload << file.rdbuf();
    const auto& type = schema.TypeOf(args[0]);
    std::unique_ptr<google::protobuf::Message> message = schema.New(type);
    if (!message->ParseFromString(payload.str())) {
      throw Rejected{"malformed",
                     std::to_string(payload.str().size()) + " bytes are not a " + type.full_name()};
    }
    flower_meta_reader::Validate(*message);
    std::string json;
    if (!flower_meta_reader::CanonicalJson(*message, &json)) {
      std::cerr << "consumer: cannot print JSON\n";
      return 2;
    }
    std::cout << json << "\n";
  } catch (const SchemaRefused& refused) {
    std::cerr << "consumer: " << refused.message << "\n";
    return 1;
  } catch (const Rejected& rejected) {
    std::cout << "rejected " << rejected.reason << ": " << rejected.detail << "\n";
    return 1;
  }
  return 0;
}
