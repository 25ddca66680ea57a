-- The income tax withheld on one month's income from one payer (tax/rules.py is its pure twin;
-- a property test holds them equal). Rounded half up to the cent: numeric round() rounds halves
-- away from zero, and every operand is >= 0.
CREATE FUNCTION distnet_withholding_tax(income bigint, rules jsonb) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    taxable bigint;
    bracket jsonb;
BEGIN
    income := greatest(income, 0);
    taxable := greatest(income - CASE WHEN income <= (rules #>> '{deduction,threshold}')::bigint
                                      THEN (rules #>> '{deduction,fixed}')::bigint
                                      ELSE round(income * (rules #>> '{deduction,rate_bps}')::numeric / 10000)::bigint
                                 END, 0);
    FOR bracket IN SELECT e FROM jsonb_array_elements(rules -> 'brackets') AS e LOOP
        IF bracket ->> 'up_to' IS NULL OR taxable <= (bracket ->> 'up_to')::bigint THEN
            RETURN greatest(round(taxable * (bracket ->> 'rate_bps')::numeric / 10000)::bigint
                            - (bracket ->> 'quick_deduction')::bigint, 0);
        END IF;
    END LOOP;
    RAISE EXCEPTION 'tax rules without an open last bracket: %', rules;
END
$$;
