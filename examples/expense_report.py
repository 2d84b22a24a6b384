"""The Expense Report workflow of seed 000 (Phase 7), written in Python as the seed's users write it,
with loopline's builder: the same workflow as examples/expense_report.yaml (a test holds the two to the
same plan). The differences from the seed are those listed at the top of that file.

    loopline run examples/expense_report.py     # waits for the manager: the link is printed on stderr
"""

from loopline import Retry, Workflow

REPORT = "tasks.save_report.output"

workflow = Workflow("expense_report", name="Expense Report Approval", version="1.0.0")
workflow.inputs_schema(
    {
        "type": "object",
        "properties": {
            "report": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "amount": {"type": "number", "exclusiveMinimum": 0},
                    "user_email": {"type": "string", "format": "email"},
                    "manager_email": {"type": "string", "format": "email"},
                },
                "required": ["id", "amount", "user_email", "manager_email"],
            },
            "payment_api": {"type": "string", "default": ""},
        },
    },
    defaults={"report": {"id": "exp-test-123", "amount": 500, "user_email": "employee@company.com",
                         "manager_email": "manager@company.com"}},
)

# 1. save the report
workflow.python("save_report", 'result = dict(inputs["report"], status="submitted")\n',
                retry=Retry(max_attempts=3, strategy="fixed", delay="1s"))

# 2. ask the manager, who has 3 days
workflow.approval(
    "request_manager_approval", [f"${{{REPORT}.manager_email}}"],
    title=f"Approve expense report ${{{REPORT}.id}} for ${{'$' + {REPORT}.amount}}?",
    description=f"Submitted by ${{{REPORT}.user_email}}.",
    details=f"${{{REPORT}}}",
    deadline="3d",
    after="save_report",
)

# 4. the fan-in: runs after whichever of the three outcomes ran
workflow.python("close_report", """
    decision = tasks["request_manager_approval"]["output"]["decision"]
    result = {"report": tasks["save_report"]["output"]["id"], "closed_after": decision}
""", after=["process_approved_branch", "escalate_to_finance", "notify_employee_denied"])

# 3. approved: pay and tell the employee, in parallel; else timed out or denied
DECISION = "tasks.request_manager_approval.output.decision"
workflow.condition(
    "check_approval", f"${{{DECISION} == 'APPROVED'}}",
    then=["process_approved_branch"],
    else_=lambda denied: denied.condition(
        "check_denial_or_timeout", f"${{{DECISION} == 'TIMED_OUT'}}",
        then=lambda timed_out: timed_out.email(
            "escalate_to_finance", ["finance_queue@company.com"], f"Overdue report ${{{REPORT}.id}}",
            f"Reason: overdue approval (no decision from ${{{REPORT}.manager_email}} in 3 days)."),
        else_=lambda rejected: rejected.email(
            "notify_employee_denied", [f"${{{REPORT}.user_email}}"], "Your expense report was denied.",
            "${default(tasks.request_manager_approval.output.comments, 'No comment.')}"),
    ),
)
workflow.parallel("process_approved_branch", {
    # Without a payment_api input there is no gateway to call: record_payment stands in for it.
    "payments": lambda payments: payments.http(
        "run_payment", "${inputs.payment_api}/pay", "POST",
        body={"report": f"${{{REPORT}.id}}", "amount": f"${{{REPORT}.amount}}"},
        when="${inputs.payment_api != ''}",
    ).python("record_payment", """
        report = tasks["save_report"]["output"]
        print(f"no payment_api given: payment of {report['amount']} for {report['id']} recorded, not sent")
        result = {"report": report["id"], "amount": report["amount"], "paid": False}
    """, when="${inputs.payment_api == ''}"),
    "notify": lambda notify: notify.email(
        "notify_employee_approved", [f"${{{REPORT}.user_email}}"], "Your expense report was approved.",
        f"Amount: ${{{REPORT}.amount}}"),
}, strategy="all")

workflow.output("decision", f"${{{DECISION}}}")
workflow.output("closed", "${tasks.close_report.output}")

if __name__ == "__main__":
    print(workflow.to_yaml())
