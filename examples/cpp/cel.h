// A subset of CEL, the language of protovalidate's custom rules, for this
// reader: literals (bool, int, uint, double, string, null, lists), `this`
// and `now`, field selection and `has()`, indexing, the operators (! - * /
// % + - == != < <= > >= in && || ?:), `size`, `startsWith`, `endsWith`,
// `contains`, `matches` (RE2), `isNan`, `isInf`, and the macros `all`,
// `exists`, `exists_one`, `filter` and `map`. Semantics as CEL's: no
// implicit conversion in arithmetic, numbers compared by value across
// int, uint and double, integer overflow and division by zero are errors,
// `&&` and `||` absorb an error the other side decides. An expression
// using anything else is refused when it is compiled, not evaluated wrong.
#pragma once

#include <memory>
#include <string>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

namespace flower_meta_reader::cel {

// Outside the subset, or not CEL: thrown by Compile, naming what.
struct Unsupported {
  std::string what;
};

// An error while evaluating (overflow, division by zero, a missing key...).
struct EvalError {
  std::string what;
};

struct Node;

// A compiled expression.
class Program {
 public:
  explicit Program(std::shared_ptr<const Node> root) : root_(std::move(root)) {}
  const Node& root() const { return *root_; }

 private:
  std::shared_ptr<const Node> root_;
};

Program Compile(const std::string& expression);

// What a rule's expression gives: true/false, or a string (empty: passes).
struct Outcome {
  bool is_string = false;
  bool passed = true;
  std::string message;
};

// Evaluate with `this` the message itself (a message rule).
Outcome OnMessage(const Program& program, const google::protobuf::Message& message);

// Evaluate with `this` the value of `field` in `owner` (a field rule): the
// whole list or map for a repeated field.
Outcome OnField(const Program& program, const google::protobuf::Message& owner,
                const google::protobuf::FieldDescriptor& field);

// Evaluate with `this` one value: element `index` of a repeated field, or
// (index -1) a singular field, such as a map entry's key or value.
Outcome OnElement(const Program& program, const google::protobuf::Message& owner,
                  const google::protobuf::FieldDescriptor& field, int index);

}  // namespace flower_meta_reader::cel
