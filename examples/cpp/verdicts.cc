// A test tool, not part of the reader: the tests pipe in one case a line,
// "<message type> <base64 payload>", and get one JSON line back:
//   {"refusal": [reason, field path, rule id, detail] | null}
// or {"refused": "<the rule this reader does not apply>"}.
//
//   verdicts [--schema SET] < cases.txt
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "rules.h"
#include "schema.h"

namespace {

using flower_meta_reader::Rejected;
using flower_meta_reader::Schema;
using flower_meta_reader::SchemaRefused;

std::string Base64Decode(const std::string& text) {
  static const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  int bits = 0, buffer = 0;
  for (char c : text) {
    const auto at = alphabet.find(c);
    if (at == std::string::npos) continue;  // '=' padding
    buffer = (buffer << 6) | static_cast<int>(at);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buffer >> bits) & 0xFF);
    }
  }
  return out;
}

std::string Json(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) {
  const Schema schema = argc == 3 ? Schema(argv[2]) : Schema();
  std::map<std::string, std::optional<std::string>> refused;
  std::string line;
  while (std::getline(std::cin, line)) {
    const auto space = line.find(' ');
    const std::string name = line.substr(0, space);
    const auto* type = schema.pool().FindMessageTypeByName(name);
    if (type == nullptr) {
      std::cerr << "verdicts: no message " << name << "\n";
      return 2;
    }
    if (!refused.count(name)) {
      try {
        schema.Check(*type);
        refused[name] = std::nullopt;
      } catch (const SchemaRefused& why) {
        refused[name] = why.message;
      }
    }
    if (refused[name]) {
      std::cout << "{\"refused\":" << Json(*refused[name]) << "}\n";
      continue;
    }
    std::unique_ptr<google::protobuf::Message> message = schema.New(*type);
    message->ParseFromString(Base64Decode(space == std::string::npos ? "" : line.substr(space + 1)));
    try {
      flower_meta_reader::Validate(*message);
      std::cout << "{\"refusal\":null}\n";
    } catch (const Rejected& r) {
      std::cout << "{\"refusal\":[" << Json(r.reason) << "," << Json(r.field_path) << ","
                << Json(r.rule_id) << "," << Json(r.detail) << "]}\n";
    }
  }
  return 0;
}
