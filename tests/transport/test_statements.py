"""The mail path's hand-built statements store and read rows exactly as the ORM does."""

import datetime

import pytest
from django.db import connection
from django.utils import timezone

from sendconn.connectors.servers import local_server
from sendconn.transport import statements
from sendconn.transport.models import Message, Recipient, RecipientStatus

pytestmark = pytest.mark.django_db


def new_message(**values):
    return Message(
        sender="app@contoso.test",
        content=b"Subject: hi\r\n\r\n\x00\xffbody\r\n",
        size=22,
        message_id="<1@contoso.test>",
        subject="Résumé",
        received_by=local_server(),
        **values,
    )


def test_insert_with_ids_gives_each_object_its_key_and_stores_what_the_orm_reads():
    messages = [new_message(client_ip="192.0.2.7"), new_message(is_dsn=True)]
    statements.insert(messages, returning_ids=True)

    assert all(message.pk for message in messages) and messages[0].pk != messages[1].pk
    stored = Message.objects.get(pk=messages[0].pk)
    assert (stored.content, stored.subject, stored.client_ip, stored.is_dsn) == (
        b"Subject: hi\r\n\r\n\x00\xffbody\r\n",
        "Résumé",
        "192.0.2.7",
        False,
    )
    assert stored.submitted_at == messages[0].submitted_at and timezone.is_aware(stored.submitted_at)
    assert Message.objects.get(pk=messages[1].pk).is_dsn is True


def test_insert_without_ids_writes_every_row_and_takes_related_keys_saved_after_assignment():
    message = new_message()
    rows = [Recipient(message=message, address=f"user{n}@fabrikam.test", domain="fabrikam.test") for n in range(3)]
    statements.insert([message], returning_ids=True)  # the rows were built before the message had a key
    statements.insert(rows)

    assert list(Recipient.objects.filter(message=message).values_list("address", "status")) == [
        (f"user{n}@fabrikam.test", RecipientStatus.READY) for n in range(3)
    ]


def test_load_builds_instances_with_the_orms_conversions():
    message = new_message()
    statements.insert([message], returning_ids=True)
    due = timezone.now() - datetime.timedelta(minutes=5)
    statements.insert(
        [
            Recipient(
                message=message,
                address="kim@fabrikam.test",
                domain="fabrikam.test",
                next_attempt_at=due,
                delay_notified=True,
            )
        ]
    )
    quote = connection.ops.quote_name

    [(row, loaded_message)] = statements.load(
        [Recipient, Message],
        f"SELECT {statements.columns(Recipient, 'r')}, {statements.columns(Message, 'm')} "
        f"FROM {quote(Recipient._meta.db_table)} r JOIN {quote(Message._meta.db_table)} m "
        f"ON m.{quote('id')} = r.{quote('message_id')}",
        [],
    )

    orm_row = Recipient.objects.get()
    assert [getattr(row, f.attname) for f in Recipient._meta.concrete_fields] == [
        getattr(orm_row, f.attname) for f in Recipient._meta.concrete_fields
    ]
    assert row.next_attempt_at == due and row.delay_notified is True and not row._state.adding
    assert bytes(loaded_message.content) == bytes(message.content) and loaded_message.pk == message.pk


def test_the_adapters_bind_what_the_orms_get_db_prep_save_binds():
    message = new_message()
    statements.insert([message], returning_ids=True)
    moment = timezone.now()
    row = Recipient(
        message=message,
        address="kim@fabrikam.test",
        domain="fabrikam.test",
        status=RecipientStatus.RETRY,  # a str subclass: the ORM's own path
        attempt_count=3,
        next_attempt_at=moment,
        first_attempt_at=None,
        last_response="451 4.4.0 Try later",
        delay_notified=True,
    )
    names = tuple(field.name for field in Recipient._meta.concrete_fields if not field.primary_key)

    adapted = [adapt(getattr(row, attname), connection) for attname, adapt in statements.adapters(Recipient, names)]

    fields = [Recipient._meta.get_field(name) for name in names]
    assert adapted == [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
