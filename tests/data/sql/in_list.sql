SELECT u.id, u.name FROM users u WHERE u.id IN (1, 2, 3) AND u.email = 'a''b@example.com' -- c
