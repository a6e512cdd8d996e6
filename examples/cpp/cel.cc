#include "cel.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include <google/protobuf/util/message_differencer.h>
#include <re2/re2.h>

namespace flower_meta_reader::cel {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// ------------------------------------------------------------------ values

struct Value;
using List = std::vector<Value>;
using Map = std::vector<std::pair<Value, Value>>;

struct Value {
  enum Kind { kNull, kBool, kInt, kUint, kDouble, kString, kBytes, kList, kMap, kMessage,
              kDuration, kTimestamp } kind = kNull;
  bool b = false;
  int64_t i = 0;  // int; seconds of a duration or timestamp
  uint64_t u = 0;
  double d = 0;
  int32_t nanos = 0;
  std::string s;  // string or bytes
  std::shared_ptr<List> list;
  std::shared_ptr<Map> map;
  const Message* m = nullptr;

  static Value Bool(bool v) { Value x; x.kind = kBool; x.b = v; return x; }
  static Value Int(int64_t v) { Value x; x.kind = kInt; x.i = v; return x; }
  static Value Uint(uint64_t v) { Value x; x.kind = kUint; x.u = v; return x; }
  static Value Double(double v) { Value x; x.kind = kDouble; x.d = v; return x; }
  static Value String(std::string v) { Value x; x.kind = kString; x.s = std::move(v); return x; }
  static Value Moment(Kind kind, int64_t seconds, int64_t nanos) {
    seconds += nanos / 1000000000, nanos %= 1000000000;
    if (nanos < 0) nanos += 1000000000, --seconds;
    Value x; x.kind = kind; x.i = seconds; x.nanos = static_cast<int32_t>(nanos); return x;
  }
};

[[noreturn]] void Fail(const std::string& what) { throw EvalError{what}; }

bool IsNumber(const Value& v) {
  return v.kind == Value::kInt || v.kind == Value::kUint || v.kind == Value::kDouble;
}

// -1, 0, 1 between two numbers by value; nullopt when unordered (NaN).
std::optional<int> CompareNumbers(const Value& a, const Value& b) {
  auto sign = [](auto x, auto y) { return x < y ? -1 : x > y ? 1 : 0; };
  if (a.kind == Value::kDouble || b.kind == Value::kDouble) {
    if (a.kind == Value::kDouble && b.kind == Value::kDouble) {
      if (std::isnan(a.d) || std::isnan(b.d)) return std::nullopt;
      return sign(a.d, b.d);
    }
    const bool flip = a.kind != Value::kDouble;
    const Value& d = flip ? b : a;
    const Value& n = flip ? a : b;
    if (std::isnan(d.d)) return std::nullopt;
    // Compare a double with an integer exactly: by its integral part, then its fraction.
    int result;
    if (d.d >= 18446744073709551616.0) result = 1;
    else if (d.d < -9223372036854775808.0) result = -1;
    else if (n.kind == Value::kUint && d.d < 0) result = -1;
    else {
      const double whole = std::trunc(d.d);
      const int by_whole = n.kind == Value::kUint
                               ? (whole < 0 ? -1 : sign(static_cast<uint64_t>(whole), n.u))
                               : (whole >= 9223372036854775808.0 ? 1 : sign(static_cast<int64_t>(whole), n.i));
      result = by_whole != 0 ? by_whole : sign(d.d - whole, 0.0);
    }
    return flip ? -result : result;
  }
  if (a.kind == Value::kInt && b.kind == Value::kInt) return sign(a.i, b.i);
  if (a.kind == Value::kUint && b.kind == Value::kUint) return sign(a.u, b.u);
  if (a.kind == Value::kInt) return a.i < 0 ? -1 : sign(static_cast<uint64_t>(a.i), b.u);
  return b.i < 0 ? 1 : sign(a.u, static_cast<uint64_t>(b.i));
}

bool Equal(const Value& a, const Value& b);

bool ListsEqual(const List& a, const List& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (!Equal(a[k], b[k])) return false;
  }
  return true;
}

const Value* Lookup(const Map& map, const Value& key) {
  for (const auto& [k, v] : map) {
    if (Equal(k, key)) return &v;
  }
  return nullptr;
}

bool Equal(const Value& a, const Value& b) {
  if (IsNumber(a) && IsNumber(b)) {
    auto c = CompareNumbers(a, b);
    return c.has_value() && *c == 0;
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::kNull: return true;
    case Value::kBool: return a.b == b.b;
    case Value::kString: case Value::kBytes: return a.s == b.s;
    case Value::kList: return ListsEqual(*a.list, *b.list);
    case Value::kMap: {
      if (a.map->size() != b.map->size()) return false;
      for (const auto& [k, v] : *a.map) {
        const Value* other = Lookup(*b.map, k);
        if (other == nullptr || !Equal(v, *other)) return false;
      }
      return true;
    }
    case Value::kMessage:
      return google::protobuf::util::MessageDifferencer::Equals(*a.m, *b.m);
    case Value::kDuration: case Value::kTimestamp: return a.i == b.i && a.nanos == b.nanos;
    default: return false;
  }
}

std::optional<int> Compare(const Value& a, const Value& b) {
  if (IsNumber(a) && IsNumber(b)) return CompareNumbers(a, b);
  if (a.kind != b.kind) Fail("no such overload: comparing different types");
  switch (a.kind) {
    case Value::kBool: return int(a.b) - int(b.b);
    case Value::kString: case Value::kBytes: return a.s < b.s ? -1 : a.s > b.s ? 1 : 0;
    case Value::kDuration: case Value::kTimestamp:
      if (a.i != b.i) return a.i < b.i ? -1 : 1;
      return a.nanos < b.nanos ? -1 : a.nanos > b.nanos ? 1 : 0;
    default: Fail("no such overload: ordering this type");
  }
}

// ----------------------------------------------------------- from protobuf

Value FromMessage(const Message& m);

Value Scalar(const Message& owner, const FieldDescriptor& f, int index) {
  const Reflection& r = *owner.GetReflection();
  const bool list = index >= 0;
  switch (f.cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
      return Value::Int(list ? r.GetRepeatedInt32(owner, &f, index) : r.GetInt32(owner, &f));
    case FieldDescriptor::CPPTYPE_INT64:
      return Value::Int(list ? r.GetRepeatedInt64(owner, &f, index) : r.GetInt64(owner, &f));
    case FieldDescriptor::CPPTYPE_UINT32:
      return Value::Uint(list ? r.GetRepeatedUInt32(owner, &f, index) : r.GetUInt32(owner, &f));
    case FieldDescriptor::CPPTYPE_UINT64:
      return Value::Uint(list ? r.GetRepeatedUInt64(owner, &f, index) : r.GetUInt64(owner, &f));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return Value::Double(list ? r.GetRepeatedFloat(owner, &f, index) : r.GetFloat(owner, &f));
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return Value::Double(list ? r.GetRepeatedDouble(owner, &f, index) : r.GetDouble(owner, &f));
    case FieldDescriptor::CPPTYPE_BOOL:
      return Value::Bool(list ? r.GetRepeatedBool(owner, &f, index) : r.GetBool(owner, &f));
    case FieldDescriptor::CPPTYPE_ENUM:
      return Value::Int(list ? r.GetRepeatedEnumValue(owner, &f, index) : r.GetEnumValue(owner, &f));
    case FieldDescriptor::CPPTYPE_STRING: {
      Value v = Value::String(list ? r.GetRepeatedString(owner, &f, index) : r.GetString(owner, &f));
      if (f.type() == FieldDescriptor::TYPE_BYTES) v.kind = Value::kBytes;
      return v;
    }
    case FieldDescriptor::CPPTYPE_MESSAGE:
      return FromMessage(list ? r.GetRepeatedMessage(owner, &f, index) : r.GetMessage(owner, &f));
  }
  return Value();
}

// A field's value as CEL sees it: a list or map for a repeated field.
Value FieldValue(const Message& owner, const FieldDescriptor& f) {
  const Reflection& r = *owner.GetReflection();
  if (f.is_map()) {
    Value v;
    v.kind = Value::kMap;
    v.map = std::make_shared<Map>();
    for (int k = 0; k < r.FieldSize(owner, &f); ++k) {
      const Message& entry = r.GetRepeatedMessage(owner, &f, k);
      v.map->emplace_back(Scalar(entry, *f.message_type()->map_key(), -1),
                          Scalar(entry, *f.message_type()->map_value(), -1));
    }
    return v;
  }
  if (f.is_repeated()) {
    Value v;
    v.kind = Value::kList;
    v.list = std::make_shared<List>();
    for (int k = 0; k < r.FieldSize(owner, &f); ++k) v.list->push_back(Scalar(owner, f, k));
    return v;
  }
  if (f.cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE && !r.HasField(owner, &f)) {
    const std::string& name = f.message_type()->full_name();
    if (name.rfind("google.protobuf.", 0) == 0 && name.size() > 5 &&
        name.compare(name.size() - 5, 5, "Value") == 0 && name != "google.protobuf.Value") {
      return Value();  // an unset wrapper is null
    }
  }
  return Scalar(owner, f, -1);
}

Value FromMessage(const Message& m) {
  const Descriptor& d = *m.GetDescriptor();
  const std::string& name = d.full_name();
  const Reflection& r = *m.GetReflection();
  if (name == "google.protobuf.Duration" || name == "google.protobuf.Timestamp") {
    return Value::Moment(name == "google.protobuf.Duration" ? Value::kDuration : Value::kTimestamp,
                         r.GetInt64(m, d.FindFieldByName("seconds")),
                         r.GetInt32(m, d.FindFieldByName("nanos")));
  }
  if (name.rfind("google.protobuf.", 0) == 0 && name.size() > 5 &&
      name.compare(name.size() - 5, 5, "Value") == 0 && d.FindFieldByName("value") != nullptr &&
      name != "google.protobuf.Value" && name != "google.protobuf.ListValue") {
    return Scalar(m, *d.FindFieldByName("value"), -1);  // a wrapper: its value
  }
  if (name == "google.protobuf.Any" || name == "google.protobuf.Struct" ||
      name == "google.protobuf.Value" || name == "google.protobuf.ListValue") {
    Fail("this reader's CEL does not read " + name);
  }
  Value v;
  v.kind = Value::kMessage;
  v.m = &m;
  return v;
}

// ------------------------------------------------------------------ the AST

enum class Op {
  kLiteral, kIdent, kSelect, kHas, kIndex, kList, kCall, kMacro, kNot, kNegate,
  kAnd, kOr, kCond, kBinary
};

}  // namespace

struct Node {
  Op op = Op::kLiteral;
  std::string name;  // identifier, field, function, operator, macro variable
  Value literal;
  std::vector<std::shared_ptr<const Node>> args;  // the target first, for a member call
  bool member = false;
};

namespace {

using NodePtr = std::shared_ptr<const Node>;

NodePtr Make(Op op, std::string name, std::vector<NodePtr> args, bool member = false) {
  auto node = std::make_shared<Node>();
  node->op = op;
  node->name = std::move(name);
  node->args = std::move(args);
  node->member = member;
  return node;
}

// ------------------------------------------------------------------ parsing

class Parser {
 public:
  Parser(const std::string& text, std::set<std::string> variables)
      : text_(text), variables_(std::move(variables)) {}

  NodePtr Parse() {
    NodePtr root = Conditional();
    Space();
    if (at_ != text_.size()) Refuse("unexpected `" + text_.substr(at_, 8) + "`");
    return root;
  }

 private:
  [[noreturn]] void Refuse(const std::string& what) {
    throw Unsupported{what + " at " + std::to_string(at_) + " in `" + text_ + "`"};
  }

  void Space() {
    while (at_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[at_]))) ++at_;
  }

  bool Take(const std::string& token) {
    Space();
    if (text_.compare(at_, token.size(), token) != 0) return false;
    // `in` is a word: not the start of an identifier such as `index`.
    if (std::isalpha(static_cast<unsigned char>(token[0])) && at_ + token.size() < text_.size() &&
        (std::isalnum(static_cast<unsigned char>(text_[at_ + token.size()])) ||
         text_[at_ + token.size()] == '_')) {
      return false;
    }
    at_ += token.size();
    return true;
  }

  void Expect(const std::string& token) {
    if (!Take(token)) Refuse("expected `" + token + "`");
  }

  NodePtr Conditional() {
    NodePtr condition = Or();
    if (!Take("?")) return condition;
    NodePtr yes = Conditional();
    Expect(":");
    NodePtr no = Conditional();
    return Make(Op::kCond, "", {condition, yes, no});
  }

  NodePtr Or() {
    NodePtr left = And();
    while (Take("||")) left = Make(Op::kOr, "", {left, And()});
    return left;
  }

  NodePtr And() {
    NodePtr left = Relation();
    while (Take("&&")) left = Make(Op::kAnd, "", {left, Relation()});
    return left;
  }

  NodePtr Relation() {
    NodePtr left = Addition();
    for (;;) {
      std::string op;
      for (const char* candidate : {"==", "!=", "<=", ">=", "<", ">", "in"}) {
        if (Take(candidate)) {
          op = candidate;
          break;
        }
      }
      if (op.empty()) return left;
      left = Make(Op::kBinary, op, {left, Addition()});
    }
  }

  NodePtr Addition() {
    NodePtr left = Multiplication();
    for (;;) {
      if (Take("+")) left = Make(Op::kBinary, "+", {left, Multiplication()});
      else if (Take("-")) left = Make(Op::kBinary, "-", {left, Multiplication()});
      else return left;
    }
  }

  NodePtr Multiplication() {
    NodePtr left = Unary();
    for (;;) {
      if (Take("*")) left = Make(Op::kBinary, "*", {left, Unary()});
      else if (Take("/")) left = Make(Op::kBinary, "/", {left, Unary()});
      else if (Take("%")) left = Make(Op::kBinary, "%", {left, Unary()});
      else return left;
    }
  }

  NodePtr Unary() {
    Space();
    if (Take("!")) return Make(Op::kNot, "", {Unary()});
    if (Take("-")) {
      Space();
      if (at_ < text_.size() && std::isdigit(static_cast<unsigned char>(text_[at_]))) {
        return Member(Number(true));  // -9223372036854775808 is an int
      }
      return Make(Op::kNegate, "", {Unary()});
    }
    return Member(Primary());
  }

  NodePtr Member(NodePtr operand) {
    for (;;) {
      if (Take(".")) {
        std::string name = Identifier();
        if (Take("(")) {
          std::vector<NodePtr> args = {operand};
          if (kMacros.count(name)) {
            std::string variable = Identifier();
            Expect(",");
            NodePtr body = Conditional();
            Expect(")");
            auto node = std::make_shared<Node>();
            node->op = Op::kMacro;
            node->name = name + " " + variable;
            node->args = {operand, body};
            operand = node;
            continue;
          }
          Arguments(&args);
          if (!kMethods.count(name)) Refuse("function `" + name + "` is not in this reader's CEL");
          operand = Make(Op::kCall, name, args, true);
        } else {
          operand = Make(Op::kSelect, name, {operand});
        }
      } else if (Take("[")) {
        NodePtr index = Conditional();
        Expect("]");
        operand = Make(Op::kIndex, "", {operand, index});
      } else {
        return operand;
      }
    }
  }

  void Arguments(std::vector<NodePtr>* args) {
    if (Take(")")) return;
    do {
      args->push_back(Conditional());
    } while (Take(","));
    Expect(")");
  }

  std::string Identifier() {
    Space();
    size_t start = at_;
    while (at_ < text_.size() && (std::isalnum(static_cast<unsigned char>(text_[at_])) || text_[at_] == '_')) ++at_;
    if (start == at_ || std::isdigit(static_cast<unsigned char>(text_[start]))) Refuse("expected a name");
    return text_.substr(start, at_ - start);
  }

  NodePtr Primary() {
    Space();
    if (at_ >= text_.size()) Refuse("unexpected end");
    const char c = text_[at_];
    if (Take("(")) {
      NodePtr inner = Conditional();
      Expect(")");
      return inner;
    }
    if (Take("[")) {
      std::vector<NodePtr> items;
      if (!Take("]")) {
        do {
          items.push_back(Conditional());
        } while (Take(","));
        Expect("]");
      }
      return Make(Op::kList, "", items);
    }
    if (c == '\'' || c == '"') return Literal(Value::String(StringLiteral()));
    if (c == 'b' && at_ + 1 < text_.size() && (text_[at_ + 1] == '\'' || text_[at_ + 1] == '"')) {
      ++at_;
      Value v = Value::String(StringLiteral());
      v.kind = Value::kBytes;
      return Literal(v);
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return Number(false);
    std::string name = Identifier();
    if (name == "true" || name == "false") return Literal(Value::Bool(name == "true"));
    if (name == "null") return Literal(Value());
    if (Take("(")) {
      if (name == "has") {
        NodePtr target = Conditional();
        Expect(")");
        if (target->op != Op::kSelect) Refuse("has() takes a field selection");
        return Make(Op::kHas, target->name, {target->args[0]});
      }
      std::vector<NodePtr> args;
      Arguments(&args);
      if (!kFunctions.count(name)) Refuse("function `" + name + "` is not in this reader's CEL");
      return Make(Op::kCall, name, args);
    }
    if (name != "this" && name != "now" && !variables_.count(name)) {
      Refuse("`" + name + "` is not in this reader's CEL");
    }
    return Make(Op::kIdent, name, {});
  }

  NodePtr Literal(const Value& value) {
    auto node = std::make_shared<Node>();
    node->op = Op::kLiteral;
    node->literal = value;
    return node;
  }

  NodePtr Number(bool negative) {
    size_t start = at_;
    bool floating = false;
    if (text_.compare(at_, 2, "0x") == 0 || text_.compare(at_, 2, "0X") == 0) {
      Refuse("hexadecimal literals are not in this reader's CEL");
    }
    while (at_ < text_.size()) {
      const char c = text_[at_];
      if (std::isdigit(static_cast<unsigned char>(c))) {
        ++at_;
      } else if (c == '.' || c == 'e' || c == 'E') {
        floating = true;
        ++at_;
        if ((c == 'e' || c == 'E') && at_ < text_.size() && (text_[at_] == '+' || text_[at_] == '-')) ++at_;
      } else {
        break;
      }
    }
    const std::string digits = (negative ? "-" : "") + text_.substr(start, at_ - start);
    if (floating) return Literal(Value::Double(std::stod(digits)));
    if (at_ < text_.size() && (text_[at_] == 'u' || text_[at_] == 'U')) {
      ++at_;
      if (negative) Refuse("a negative uint");
      return Literal(Value::Uint(std::stoull(digits)));
    }
    try {
      return Literal(Value::Int(std::stoll(digits)));
    } catch (const std::out_of_range&) {
      Refuse("an int literal out of range");
    }
  }

  std::string StringLiteral() {
    const char quote = text_[at_++];
    if (text_.compare(at_, 2, std::string(2, quote)) == 0) Refuse("triple-quoted strings");
    std::string out;
    while (at_ < text_.size() && text_[at_] != quote) {
      char c = text_[at_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_ >= text_.size()) Refuse("an unfinished escape");
      c = text_[at_++];
      switch (c) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case '\\': case '\'': case '"': case '`': case '?': out += c; break;
        default: Refuse(std::string("the escape \\") + c + " is not in this reader's CEL");
      }
    }
    if (at_ >= text_.size()) Refuse("an unfinished string");
    ++at_;
    return out;
  }

  static inline const std::set<std::string> kMacros = {"all", "exists", "exists_one", "filter", "map"};
  static inline const std::set<std::string> kMethods = {
      "size", "startsWith", "endsWith", "contains", "matches", "isNan", "isInf"};
  static inline const std::set<std::string> kFunctions = {"size", "matches"};

  const std::string& text_;
  size_t at_ = 0;
  std::set<std::string> variables_;  // the macros' variables: known names
};

// The names the expression's macros introduce (`x` of `this.all(x, x > 0)`).
std::set<std::string> MacroVariables(const std::string& text) {
  std::set<std::string> found;
  static const RE2 macro("\\.(?:all|exists|exists_one|filter|map)\\(\\s*([A-Za-z_][A-Za-z0-9_]*)\\s*,");
  re2::StringPiece input(text);
  std::string name;
  while (RE2::FindAndConsume(&input, macro, &name)) found.insert(name);
  return found;
}

// ---------------------------------------------------------------- evaluation

struct Scope {
  const Value* self;
  const Value* now;
  std::map<std::string, Value> variables;
};

Value Eval(const Node& node, Scope& scope);

bool AsBool(const Value& v) {
  if (v.kind != Value::kBool) Fail("no such overload: a condition that is not a bool");
  return v.b;
}

Value Add(const Value& a, const Value& b, char op) {
  if (a.kind == Value::kInt && b.kind == Value::kInt) {
    int64_t out;
    bool overflow = op == '+' ? __builtin_add_overflow(a.i, b.i, &out)
                  : op == '-' ? __builtin_sub_overflow(a.i, b.i, &out)
                              : __builtin_mul_overflow(a.i, b.i, &out);
    if (overflow) Fail("integer overflow");
    return Value::Int(out);
  }
  if (a.kind == Value::kUint && b.kind == Value::kUint) {
    uint64_t out;
    bool overflow = op == '+' ? __builtin_add_overflow(a.u, b.u, &out)
                  : op == '-' ? __builtin_sub_overflow(a.u, b.u, &out)
                              : __builtin_mul_overflow(a.u, b.u, &out);
    if (overflow) Fail("unsigned integer overflow");
    return Value::Uint(out);
  }
  if (a.kind == Value::kDouble && b.kind == Value::kDouble) {
    return Value::Double(op == '+' ? a.d + b.d : op == '-' ? a.d - b.d : a.d * b.d);
  }
  if (op == '+' && a.kind == b.kind && (a.kind == Value::kString || a.kind == Value::kBytes)) {
    Value v = a;
    v.s += b.s;
    return v;
  }
  if (op == '+' && a.kind == Value::kList && b.kind == Value::kList) {
    Value v = a;
    v.list = std::make_shared<List>(*a.list);
    v.list->insert(v.list->end(), b.list->begin(), b.list->end());
    return v;
  }
  const bool moments = (a.kind == Value::kDuration || a.kind == Value::kTimestamp) &&
                       (b.kind == Value::kDuration || b.kind == Value::kTimestamp);
  if (moments && op != '*') {
    const bool minus = op == '-';
    Value::Kind kind;
    if (a.kind == Value::kTimestamp && b.kind == Value::kTimestamp) {
      if (!minus) Fail("no such overload: timestamp + timestamp");
      kind = Value::kDuration;
    } else if (b.kind == Value::kTimestamp && minus) {
      Fail("no such overload: duration - timestamp");
    } else {
      kind = a.kind == Value::kTimestamp || b.kind == Value::kTimestamp ? Value::kTimestamp
                                                                         : Value::kDuration;
    }
    const int64_t sign = minus ? -1 : 1;
    return Value::Moment(kind, a.i + sign * b.i, int64_t{a.nanos} + sign * b.nanos);
  }
  Fail(std::string("no such overload: ") + op);
}

Value Divide(const Value& a, const Value& b, char op) {
  if (a.kind == Value::kInt && b.kind == Value::kInt) {
    if (b.i == 0) Fail(op == '/' ? "divide by zero" : "modulus by zero");
    if (a.i == std::numeric_limits<int64_t>::min() && b.i == -1) Fail("integer overflow");
    return Value::Int(op == '/' ? a.i / b.i : a.i % b.i);
  }
  if (a.kind == Value::kUint && b.kind == Value::kUint) {
    if (b.u == 0) Fail(op == '/' ? "divide by zero" : "modulus by zero");
    return Value::Uint(op == '/' ? a.u / b.u : a.u % b.u);
  }
  if (op == '/' && a.kind == Value::kDouble && b.kind == Value::kDouble) return Value::Double(a.d / b.d);
  Fail(std::string("no such overload: ") + op);
}

size_t CodePoints(const std::string& text) {
  size_t count = 0;
  for (unsigned char c : text) count += (c & 0xC0) != 0x80;
  return count;
}

Value Size(const Value& v) {
  switch (v.kind) {
    case Value::kString: return Value::Int(static_cast<int64_t>(CodePoints(v.s)));
    case Value::kBytes: return Value::Int(static_cast<int64_t>(v.s.size()));
    case Value::kList: return Value::Int(static_cast<int64_t>(v.list->size()));
    case Value::kMap: return Value::Int(static_cast<int64_t>(v.map->size()));
    default: Fail("no such overload: size");
  }
}

Value Select(const Value& v, const std::string& name, bool test) {
  if (v.kind == Value::kMap) {
    const Value* found = Lookup(*v.map, Value::String(name));
    if (test) return Value::Bool(found != nullptr);
    if (found == nullptr) Fail("no such key: " + name);
    return *found;
  }
  if (v.kind != Value::kMessage) Fail("no such overload: selecting a field of a non-message");
  const Message& m = *v.m;
  const FieldDescriptor* f = m.GetDescriptor()->FindFieldByName(name);
  if (f == nullptr) Fail("no such field: " + name);
  if (test) {  // present; without presence, not the zero value
    const Reflection& r = *m.GetReflection();
    return Value::Bool(f->is_repeated() ? r.FieldSize(m, f) > 0 : r.HasField(m, f));
  }
  return FieldValue(m, *f);
}

bool Matches(const std::string& text, const std::string& pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  RE2 re(pattern, options);
  if (!re.ok()) Fail("invalid regex: " + pattern);
  return RE2::PartialMatch(text, re);
}

Value Call(const Node& node, Scope& scope) {
  std::vector<Value> args;
  for (const NodePtr& arg : node.args) args.push_back(Eval(*arg, scope));
  const std::string& name = node.name;
  auto strings = [&](size_t n) {
    if (args.size() != n) Fail("no such overload: " + name);
    for (const Value& v : args) {
      if (v.kind != Value::kString) Fail("no such overload: " + name);
    }
  };
  if (name == "size") {
    if (args.size() != 1) Fail("no such overload: size");
    return Size(args[0]);
  }
  if (name == "startsWith") { strings(2); return Value::Bool(args[0].s.rfind(args[1].s, 0) == 0); }
  if (name == "endsWith") {
    strings(2);
    const std::string& s = args[0].s;
    const std::string& t = args[1].s;
    return Value::Bool(s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0);
  }
  if (name == "contains") { strings(2); return Value::Bool(args[0].s.find(args[1].s) != std::string::npos); }
  if (name == "matches") { strings(2); return Value::Bool(Matches(args[0].s, args[1].s)); }
  if (name == "isNan" || name == "isInf") {
    if (args.size() != 1 || args[0].kind != Value::kDouble) Fail("no such overload: " + name);
    return Value::Bool(name == "isNan" ? std::isnan(args[0].d) : std::isinf(args[0].d));
  }
  Fail("no such function: " + name);
}

// The elements a macro ranges over: a list's items, a map's keys.
List Range(const Value& v) {
  if (v.kind == Value::kList) return *v.list;
  if (v.kind == Value::kMap) {
    List keys;
    for (const auto& [key, unused] : *v.map) keys.push_back(key);
    return keys;
  }
  Fail("no such overload: a macro over a non-list");
}

Value Macro(const Node& node, Scope& scope) {
  const std::string kind = node.name.substr(0, node.name.find(' '));
  const std::string variable = node.name.substr(node.name.find(' ') + 1);
  const List items = Range(Eval(*node.args[0], scope));
  const std::optional<Value> shadowed =
      scope.variables.count(variable) ? std::optional<Value>(scope.variables[variable]) : std::nullopt;
  auto restore = [&] {
    if (shadowed) scope.variables[variable] = *shadowed;
    else scope.variables.erase(variable);
  };
  Value result;
  std::optional<EvalError> error;
  if (kind == "map" || kind == "filter") {
    result.kind = Value::kList;
    result.list = std::make_shared<List>();
    for (const Value& item : items) {
      scope.variables[variable] = item;
      try {
        Value out = Eval(*node.args[1], scope);
        if (kind == "map") result.list->push_back(out);
        else if (AsBool(out)) result.list->push_back(item);
      } catch (...) {
        restore();
        throw;
      }
    }
    restore();
    return result;
  }
  int true_count = 0;
  bool any_false = false;
  for (const Value& item : items) {
    scope.variables[variable] = item;
    try {
      const bool holds = AsBool(Eval(*node.args[1], scope));
      true_count += holds;
      any_false = any_false || !holds;
      if ((kind == "all" && !holds) || (kind == "exists" && holds)) break;
    } catch (const EvalError& err) {
      if (kind == "exists_one") {
        restore();
        throw;
      }
      error = err;
    }
  }
  restore();
  if (kind == "all") {
    if (any_false) return Value::Bool(false);
    if (error) throw *error;
    return Value::Bool(true);
  }
  if (kind == "exists") {
    if (true_count > 0) return Value::Bool(true);
    if (error) throw *error;
    return Value::Bool(false);
  }
  return Value::Bool(true_count == 1);
}

Value Binary(const Node& node, Scope& scope) {
  const Value a = Eval(*node.args[0], scope);
  const Value b = Eval(*node.args[1], scope);
  const std::string& op = node.name;
  if (op == "==") return Value::Bool(Equal(a, b));
  if (op == "!=") return Value::Bool(!Equal(a, b));
  if (op == "in") {
    if (b.kind == Value::kList) {
      for (const Value& item : *b.list) {
        if (Equal(a, item)) return Value::Bool(true);
      }
      return Value::Bool(false);
    }
    if (b.kind == Value::kMap) return Value::Bool(Lookup(*b.map, a) != nullptr);
    Fail("no such overload: in");
  }
  if (op == "<" || op == "<=" || op == ">" || op == ">=") {
    const auto c = Compare(a, b);
    if (!c.has_value()) return Value::Bool(false);
    return Value::Bool(op == "<" ? *c < 0 : op == "<=" ? *c <= 0 : op == ">" ? *c > 0 : *c >= 0);
  }
  if (op == "+" || op == "-" || op == "*") return Add(a, b, op[0]);
  return Divide(a, b, op[0]);
}

Value Index(const Value& target, const Value& index) {
  if (target.kind == Value::kMap) {
    const Value* found = Lookup(*target.map, index);
    if (found == nullptr) Fail("no such key");
    return *found;
  }
  if (target.kind != Value::kList) Fail("no such overload: indexing");
  int64_t at;
  if (index.kind == Value::kInt) at = index.i;
  else if (index.kind == Value::kUint && index.u <= uint64_t(std::numeric_limits<int64_t>::max())) at = int64_t(index.u);
  else Fail("no such overload: a list index");
  if (at < 0 || at >= int64_t(target.list->size())) Fail("index out of range");
  return (*target.list)[size_t(at)];
}

Value Eval(const Node& node, Scope& scope) {
  switch (node.op) {
    case Op::kLiteral: return node.literal;
    case Op::kIdent:
      if (node.name == "this") return *scope.self;
      if (node.name == "now") return *scope.now;
      if (scope.variables.count(node.name)) return scope.variables.at(node.name);
      Fail("undeclared reference to " + node.name);
    case Op::kSelect: return Select(Eval(*node.args[0], scope), node.name, false);
    case Op::kHas: return Select(Eval(*node.args[0], scope), node.name, true);
    case Op::kIndex: return Index(Eval(*node.args[0], scope), Eval(*node.args[1], scope));
    case Op::kList: {
      Value v;
      v.kind = Value::kList;
      v.list = std::make_shared<List>();
      for (const NodePtr& item : node.args) v.list->push_back(Eval(*item, scope));
      return v;
    }
    case Op::kCall: return Call(node, scope);
    case Op::kMacro: return Macro(node, scope);
    case Op::kNot: return Value::Bool(!AsBool(Eval(*node.args[0], scope)));
    case Op::kNegate: {
      const Value v = Eval(*node.args[0], scope);
      if (v.kind == Value::kInt) {
        if (v.i == std::numeric_limits<int64_t>::min()) Fail("integer overflow");
        return Value::Int(-v.i);
      }
      if (v.kind == Value::kDouble) return Value::Double(-v.d);
      Fail("no such overload: -");
    }
    case Op::kAnd: case Op::kOr: {
      // An error on one side is absorbed when the other side decides.
      const bool decides = node.op == Op::kOr;
      std::optional<EvalError> error;
      for (const NodePtr& side : node.args) {
        try {
          if (AsBool(Eval(*side, scope)) == decides) return Value::Bool(decides);
        } catch (const EvalError& err) {
          if (!error) error = err;
        }
      }
      if (error) throw *error;
      return Value::Bool(!decides);
    }
    case Op::kCond:
      return AsBool(Eval(*node.args[0], scope)) ? Eval(*node.args[1], scope) : Eval(*node.args[2], scope);
    case Op::kBinary: return Binary(node, scope);
  }
  Fail("unknown expression");
}

Outcome Run(const Program& program, const Value& self) {
  const auto clock = std::chrono::system_clock::now().time_since_epoch();
  const int64_t nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(clock).count();
  const Value now = Value::Moment(Value::kTimestamp, nanos / 1000000000, nanos % 1000000000);
  Scope scope{&self, &now, {}};
  const Value result = Eval(program.root(), scope);
  Outcome outcome;
  if (result.kind == Value::kBool) {
    outcome.passed = result.b;
  } else if (result.kind == Value::kString) {
    outcome.is_string = true;
    outcome.passed = result.s.empty();
    outcome.message = result.s;
  } else {
    Fail("the expression gives neither a bool nor a string");
  }
  return outcome;
}

}  // namespace

Program Compile(const std::string& expression) {
  Parser parser(expression, MacroVariables(expression));
  return Program(parser.Parse());
}

Outcome OnMessage(const Program& program, const Message& message) {
  return Run(program, FromMessage(message));
}

Outcome OnField(const Program& program, const Message& owner, const FieldDescriptor& field) {
  return Run(program, FieldValue(owner, field));
}

Outcome OnElement(const Program& program, const Message& owner, const FieldDescriptor& field,
                  int index) {
  return Run(program, Scalar(owner, field, index));
}

}  // namespace flower_meta_reader::cel
