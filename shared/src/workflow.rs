//! Workflows: `chain`, `group` and `chord` of task signatures, described as a tree (so a cycle
//! cannot be expressed) and compiled into a plan: a list of task nodes, each with the nodes it
//! waits for and where its input comes from.
//!
//! Passing results: a node that follows something gets that thing's output as input. The input
//! is prepended to array `args` (`add([4])` after a task that returned 4 runs `add([4, 4])`);
//! replaces absent (`null`) args (a chord callback `add` with no args sums the group's list);
//! and is set as the `input` key of object args. A group's output is the list of its members'
//! outputs, in the order given.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::task::TaskOptions;

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 8;
/// Most task nodes in one workflow.
pub const MAX_NODES: usize = 10_000;

/// One node of a workflow description: exactly one of `task`, `chain`, `group`, `chord`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A task signature: the task's name...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// ...its arguments...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// ...its queue (default: the task's route)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// ...and its options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<TaskOptions>,
    /// Run these one after another, each getting the previous one's result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub chain: Option<Vec<Step>>,
    /// Run these in parallel; the output is the list of their results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub group: Option<Vec<Step>>,
    /// Run a group, then the callback with the list of its results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub chord: Option<Chord>,
    /// At the top level only: a task that runs once when a member fails for good, with
    /// `{task_id, error}` as its input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub on_error: Option<Box<Step>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Chord {
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub group: Vec<Step>,
    #[cfg_attr(feature = "openapi", schema(no_recursion))]
    pub callback: Box<Step>,
}

/// A whole workflow: its root step (with the optional `on_error` task).
pub type WorkflowSpec = Step;

/// Builders for task authors.
impl Step {
    pub fn task(name: &str, args: Value) -> Self {
        Self {
            task: Some(name.into()),
            args: Some(args),
            ..Default::default()
        }
    }
    pub fn chain(steps: Vec<Step>) -> Self {
        Self {
            chain: Some(steps),
            ..Default::default()
        }
    }
    pub fn group(steps: Vec<Step>) -> Self {
        Self {
            group: Some(steps),
            ..Default::default()
        }
    }
    pub fn chord(group: Vec<Step>, callback: Step) -> Self {
        Self {
            chord: Some(Chord {
                group,
                callback: Box::new(callback),
            }),
            ..Default::default()
        }
    }
}

/// Where a node's input comes from: one node's result, or a list of inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Output {
    Node(usize),
    List(Vec<Output>),
}

impl Output {
    /// Every node this output is made of.
    pub fn nodes(&self, into: &mut Vec<usize>) {
        match self {
            Output::Node(n) => into.push(*n),
            Output::List(items) => items.iter().for_each(|i| i.nodes(into)),
        }
    }

    /// The output as JSON, given each node's result.
    pub fn resolve(&self, result: &dyn Fn(usize) -> Value) -> Value {
        match self {
            Output::Node(n) => result(*n),
            Output::List(items) => Value::Array(items.iter().map(|i| i.resolve(result)).collect()),
        }
    }
}

/// One task of a compiled workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanNode {
    pub task: String,
    #[serde(default)]
    pub args: Value,
    #[serde(default)]
    pub queue: Option<String>,
    #[serde(default)]
    pub options: TaskOptions,
    /// Nodes that must succeed before this one runs.
    pub deps: Vec<usize>,
    /// Where its input comes from (none for the first tasks).
    pub input: Option<Output>,
}

/// A compiled workflow.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub nodes: Vec<PlanNode>,
    /// The workflow's result.
    pub output: Output,
    /// The error callback's node (not counted among the members).
    pub on_error: Option<usize>,
    /// The W3C `traceparent` that started the workflow (the request's, or a starting task's
    /// `ctx.trace()`): every member's run continues that trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Why a description cannot run, with where in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct PlanError {
    pub path: String,
    pub message: String,
}

fn bad(path: &str, message: impl Into<String>) -> PlanError {
    PlanError {
        path: path.into(),
        message: message.into(),
    }
}

impl Plan {
    pub fn compile(spec: &WorkflowSpec) -> Result<Plan, PlanError> {
        let mut plan = Plan {
            nodes: Vec::new(),
            output: Output::List(Vec::new()),
            on_error: None,
            traceparent: None,
        };
        plan.output = plan.add(spec, None, "workflow", 0)?;
        if let Some(callback) = &spec.on_error {
            if callback.chain.is_some() || callback.group.is_some() || callback.chord.is_some() || callback.on_error.is_some() {
                return Err(bad("on_error", "the error callback must be a single task"));
            }
            let node = plan.task_node(callback, None, "on_error")?;
            plan.on_error = Some(node);
        }
        Ok(plan)
    }

    /// Members: every node but the error callback.
    pub fn members(&self) -> usize {
        self.nodes.len() - usize::from(self.on_error.is_some())
    }

    fn add(&mut self, step: &Step, after: Option<Output>, path: &str, depth: usize) -> Result<Output, PlanError> {
        if depth > MAX_DEPTH {
            return Err(bad(path, format!("nesting is deeper than {MAX_DEPTH} levels")));
        }
        let kinds = [
            step.task.is_some(),
            step.chain.is_some(),
            step.group.is_some(),
            step.chord.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(bad(path, "give exactly one of task, chain, group or chord"));
        }
        if depth > 0 && step.on_error.is_some() {
            return Err(bad(path, "on_error belongs at the top level of the workflow"));
        }
        if step.task.is_none() && (step.args.is_some() || step.queue.is_some() || step.options.is_some()) {
            return Err(bad(path, "args, queue and options belong to a task"));
        }
        if step.task.is_some() {
            return Ok(Output::Node(self.task_node(step, after, path)?));
        }
        if let Some(steps) = &step.chain {
            if steps.is_empty() {
                return Err(bad(path, "a chain needs at least one step"));
            }
            let mut current = after;
            for (i, s) in steps.iter().enumerate() {
                current = Some(self.add(s, current, &format!("{path}.chain[{i}]"), depth + 1)?);
            }
            return Ok(current.expect("non-empty chain"));
        }
        if let Some(steps) = &step.group {
            return self.group(steps, after, &format!("{path}.group"), depth);
        }
        let chord = step.chord.as_ref().expect("one kind is set");
        let header = self.group(&chord.group, after, &format!("{path}.chord.group"), depth)?;
        self.add(&chord.callback, Some(header), &format!("{path}.chord.callback"), depth + 1)
    }

    fn group(&mut self, steps: &[Step], after: Option<Output>, path: &str, depth: usize) -> Result<Output, PlanError> {
        if steps.is_empty() {
            return Err(bad(path, "a group needs at least one step"));
        }
        let outputs = steps
            .iter()
            .enumerate()
            .map(|(i, s)| self.add(s, after.clone(), &format!("{path}[{i}]"), depth + 1))
            .collect::<Result<_, _>>()?;
        Ok(Output::List(outputs))
    }

    fn task_node(&mut self, step: &Step, input: Option<Output>, path: &str) -> Result<usize, PlanError> {
        let Some(task) = &step.task else {
            return Err(bad(path, "the error callback must be a task"));
        };
        if self.nodes.len() >= MAX_NODES {
            return Err(bad(path, format!("a workflow has at most {MAX_NODES} tasks")));
        }
        let mut deps = Vec::new();
        if let Some(input) = &input {
            input.nodes(&mut deps);
        }
        self.nodes.push(PlanNode {
            task: task.clone(),
            args: step.args.clone().unwrap_or(Value::Null),
            queue: step.queue.clone(),
            options: step.options.clone().unwrap_or_default(),
            deps,
            input,
        });
        Ok(self.nodes.len() - 1)
    }
}

/// The arguments a node runs with, given its input.
pub fn apply_input(args: &Value, input: Value) -> Value {
    match args {
        Value::Null => input,
        Value::Array(rest) => Value::Array(std::iter::once(input).chain(rest.iter().cloned()).collect()),
        Value::Object(map) => {
            let mut map = map.clone();
            map.insert("input".into(), input);
            Value::Object(map)
        }
        other => Value::Array(vec![input, other.clone()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> WorkflowSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_chain_links_each_task_to_the_previous_one() {
        let plan = Plan::compile(&spec(
            json!({"chain": [{"task": "add", "args": [2, 2]}, {"task": "add", "args": [4]}, {"task": "add", "args": [8]}]}),
        ))
        .unwrap();
        let deps: Vec<_> = plan.nodes.iter().map(|n| n.deps.clone()).collect();
        assert_eq!(deps, [vec![], vec![0], vec![1]]);
        assert_eq!(plan.output, Output::Node(2));
    }

    #[test]
    fn a_chord_callback_waits_for_every_member_and_gets_their_list() {
        let group: Vec<Value> = (0..3).map(|i| json!({"task": "add", "args": [i, i]})).collect();
        let plan = Plan::compile(&spec(json!({"chord": {"group": group, "callback": {"task": "add"}}}))).unwrap();
        let callback = &plan.nodes[3];
        assert_eq!(callback.deps, [0, 1, 2]);
        let input = callback.input.as_ref().unwrap().resolve(&|n| json!(n * 2));
        assert_eq!(apply_input(&callback.args, input), json!([0, 2, 4]));
    }

    #[test]
    fn nesting_a_group_of_chains_in_a_chain() {
        let s = spec(json!({"chain": [
            {"task": "echo", "args": 1},
            {"group": [{"chain": [{"task": "a"}, {"task": "b"}]}, {"task": "c"}]},
            {"task": "d"}
        ]}));
        let plan = Plan::compile(&s).unwrap();
        let names: Vec<_> = plan.nodes.iter().map(|n| (n.task.as_str(), n.deps.clone())).collect();
        assert_eq!(
            names,
            [("echo", vec![]), ("a", vec![0]), ("b", vec![1]), ("c", vec![0]), ("d", vec![2, 3])]
        );
        assert_eq!(plan.nodes[4].input, Some(Output::List(vec![Output::Node(2), Output::Node(3)])));
    }

    #[test]
    fn bad_descriptions_name_the_problem_and_where() {
        let cases = [
            (json!({"group": []}), "workflow.group", "at least one"),
            (json!({"chain": []}), "workflow", "at least one"),
            (json!({"task": "a", "group": [{"task": "b"}]}), "workflow", "exactly one"),
            (json!({"chain": [{"task": "a"}, {"args": [1]}]}), "workflow.chain[1]", "exactly one"),
        ];
        for (v, path, message) in cases {
            let e = Plan::compile(&spec(v.clone())).unwrap_err();
            assert_eq!(e.path, path, "{v}");
            assert!(e.message.contains(message), "{v}: {e}");
        }
        let mut deep = json!({"task": "a"});
        for _ in 0..10 {
            deep = json!({"chain": [deep]});
        }
        assert!(Plan::compile(&spec(deep)).unwrap_err().message.contains("deeper"));
    }

    #[test]
    fn input_is_prepended_replaces_null_or_is_set_on_objects() {
        assert_eq!(apply_input(&json!([4]), json!(4)), json!([4, 4]));
        assert_eq!(apply_input(&Value::Null, json!([1, 2])), json!([1, 2]));
        assert_eq!(apply_input(&json!({"k": 1}), json!(7)), json!({"k": 1, "input": 7}));
    }
}
